"""The load generator: kube-apiserver's side of the webhook calls, as cheap as possible.

It runs in its own process and shares the two cores with the server it measures, so
every microsecond it spends is one the server does not get. It is therefore not an
HTTP library but a raw HTTP/1.1 client on asyncio's transports (uvloop's when
installed): requests are prebuilt bytes, a response is read by its Content-Length, and
nothing is parsed beyond the status line and that header. Both servers (routewarden and
the baseline) are measured with this same client, so they pay the same client cost;
the client's CPU time per request is reported beside the figures.

Two modes, like the two questions a benchmark asks:

* ``closed``: ``connections`` keep-alive connections each send the next request as
  soon as the previous answer arrives. Maximum throughput.
* ``open``: requests are scheduled at ``rate`` per second (Poisson arrivals) whatever
  the server does, and latency is measured from the *scheduled* time, so a stalled
  server is charged for the requests that queued behind the stall (no coordinated
  omission). Like the apiserver, at most ``connections`` requests are in flight; the
  rest wait in the client's queue, and that wait counts.

Output: one JSON object on stdout (requests, errors, rps, percentiles in ms, client CPU,
and with ``--server-pid`` the server's CPU per request over the measured window, read
from ``/proc``: the cost of a review, which the machine's other load moves far less
than it moves the throughput).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import ssl
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

import orjson


def content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (``/proc/<pid>/stat``, clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_requests(path: Path) -> list[bytes]:
    """Requests stored by ``generate.write_requests``: each one a 4-byte length, then its bytes."""
    data = path.read_bytes()
    out, at = [], 0
    while at < len(data):
        size = int.from_bytes(data[at:at + 4], "big")
        out.append(data[at + 4:at + 4 + size])
        at += 4 + size
    return out


MIN_SLEEP = 0.001
# An overloaded server leaves requests queued at the end of an open-loop run; wait this
# long for them, then report the rest as unfinished instead of stretching the run.
DRAIN_SECONDS = 5.0


class Connection(asyncio.Protocol):
    """One keep-alive connection; :meth:`call` sends a request and waits for the whole answer."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.need = -1  # total bytes of the response being read, -1 until its head is in

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection lost: {exc}"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.need < 0:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            self.need = end + 4 + content_length(bytes(self.buffer[:end]))
        if len(self.buffer) >= self.need:
            response = bytes(self.buffer[:self.need])
            del self.buffer[:self.need]
            self.need = -1
            status = int(response[9:12])
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result((status, response))

    async def call(self, request: bytes) -> tuple[int, bytes]:
        self.waiter = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(request)
        return await self.waiter


async def connect(host: str, port: int, context: ssl.SSLContext, count: int) -> list[Connection]:
    loop = asyncio.get_running_loop()
    out = []
    for _ in range(count):
        _, protocol = await loop.create_connection(Connection, host, port, ssl=context, server_hostname="localhost")
        out.append(protocol)
    return out


class Recorder:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors = 0
        self.denied = 0
        self.unfinished = 0
        self.recording = False

    def record(self, started: float, status: int, response: bytes) -> None:
        if not self.recording:
            return
        self.latencies.append(time.perf_counter() - started)
        if status != 200:
            self.errors += 1
        elif b'"allowed":true' not in response:
            self.denied += 1


async def closed_loop(conns: list[Connection], requests: list[bytes], rec: Recorder, *, stop: float) -> None:
    async def worker(conn: Connection, offset: int) -> None:
        i = offset
        while time.perf_counter() < stop:
            started = time.perf_counter()
            status, response = await conn.call(requests[i % len(requests)])
            rec.record(started, status, response)
            i += len(conns)

    await asyncio.gather(*(worker(c, k) for k, c in enumerate(conns)))


async def open_loop(conns: list[Connection], requests: list[bytes], rec: Recorder, *, rate: float, stop: float,
                    seed: int) -> None:
    """Poisson arrivals at ``rate``; each request's latency starts at its scheduled time."""
    rng = random.Random(seed)
    queue: deque[tuple[float, bytes]] = deque()
    idle = list(conns)
    loop = asyncio.get_running_loop()
    inflight: set[asyncio.Task[None]] = set()

    async def send(conn: Connection, scheduled: float, request: bytes) -> None:
        status, response = await conn.call(request)
        rec.record(scheduled, status, response)
        if queue:
            nxt, body = queue.popleft()
            task = loop.create_task(send(conn, nxt, body))
            inflight.add(task)
            task.add_done_callback(inflight.discard)
        else:
            idle.append(conn)

    next_at = time.perf_counter()
    i = 0
    while next_at < stop:
        now = time.perf_counter()
        while next_at <= now and next_at < stop:
            request = requests[i % len(requests)]
            i += 1
            if idle:
                task = loop.create_task(send(idle.pop(), next_at, request))
                inflight.add(task)
                task.add_done_callback(inflight.discard)
            else:
                queue.append((next_at, request))
            next_at += rng.expovariate(rate)
        # Event loop timers have millisecond resolution; a shorter sleep would spin. So an
        # arrival may be dispatched up to 1 ms late, and its latency (from the schedule)
        # includes that: the same for both servers.
        await asyncio.sleep(max(MIN_SLEEP, next_at - time.perf_counter()))
    drain_until = time.perf_counter() + DRAIN_SECONDS
    while (inflight or queue) and time.perf_counter() < drain_until:
        await asyncio.sleep(0.01)
    rec.unfinished = len(queue) + len(inflight)
    queue.clear()
    for task in inflight:
        task.cancel()


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    requests = read_requests(Path(args.requests))
    context = ssl.create_default_context(cafile=args.ca)
    conns = await connect(args.host, args.port, context, args.connections)
    rec = Recorder()
    cpu0 = time.process_time()
    started = time.perf_counter()
    if args.mode == "closed":
        warm_until = started + args.warmup
        # Warm up (connections, caches, the server's first allocations), then measure.
        await closed_loop(conns, requests, rec, stop=warm_until)
        rec.recording = True
        cpu0, measured_from = time.process_time(), time.perf_counter()
        server0 = cpu_seconds(args.server_pid) if args.server_pid else 0.0
        await closed_loop(conns, requests, rec, stop=measured_from + args.duration)
    else:
        await open_loop(conns, requests, rec, rate=args.rate, stop=started + args.warmup, seed=args.seed + 1)
        rec.recording = True
        cpu0, measured_from = time.process_time(), time.perf_counter()
        server0 = cpu_seconds(args.server_pid) if args.server_pid else 0.0
        await open_loop(conns, requests, rec, rate=args.rate, stop=measured_from + args.duration, seed=args.seed)
    elapsed = time.perf_counter() - measured_from
    cpu = time.process_time() - cpu0
    server_cpu = cpu_seconds(args.server_pid) - server0 if args.server_pid else None
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()
    lat = sorted(rec.latencies)
    n = len(lat)
    raw = {"client_cpu_seconds": cpu, "server_cpu_seconds": server_cpu,
           "latencies_ms": [round(x * 1e3, 4) for x in lat]} if args.raw else {}
    return {
        "mode": args.mode, "requests": n, "errors": rec.errors, "denied": rec.denied,
        "unfinished": rec.unfinished,
        "seconds": round(elapsed, 3), "rps": round(n / elapsed, 1) if elapsed else 0.0,
        "rate": args.rate if args.mode == "open" else None,
        "p50_ms": round(percentile(lat, 0.50) * 1e3, 3), "p99_ms": round(percentile(lat, 0.99) * 1e3, 3),
        "p999_ms": round(percentile(lat, 0.999) * 1e3, 3), "max_ms": round(lat[-1] * 1e3, 3) if lat else None,
        "client_cpu_us_per_request": round(cpu / n * 1e6, 1) if n else None,
        "server_cpu_us_per_request": round(server_cpu / n * 1e6, 1) if n and server_cpu is not None else None,
        "loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
        **raw,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", required=True, help="CA certificate that signed the server's")
    parser.add_argument("--requests", required=True, help="file of raw HTTP requests (generate.write_requests)")
    parser.add_argument("--mode", choices=["closed", "open"], default="closed")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=1.5)
    parser.add_argument("--rate", type=float, default=0.0, help="requests per second (open mode)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--server-pid", type=int, default=0, help="report this process's CPU per request")
    parser.add_argument("--no-uvloop", action="store_true", help="use asyncio's own event loop")
    parser.add_argument("--raw", action="store_true",
                        help="also output every latency and the CPU totals (to merge runs: bench/run.py)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.mode == "open" and args.rate <= 0:
        sys.stderr.write("--rate is required in open mode\n")
        return 2
    runner: Any = asyncio.run
    if not args.no_uvloop:
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:
            pass
    result = runner(run(args))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
