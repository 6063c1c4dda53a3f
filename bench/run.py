"""``make bench``: routewarden against a bare aiohttp baseline, in the same run, on this machine.

What it does, in order (about eight minutes on two cores; ``--quick`` for a one-minute
smoke run that skips the 10k and 100k-route sizes):

1. Generates a cluster (10,000 HTTPRoutes in 2,000 namespaces, 50 Gateways, 5,000
   ReferenceGrants; :mod:`generate`), certificates (``routewarden certs``: ECDSA P-256)
   and the request bodies.
2. Starts ``python -m webhook serve --state ... --policies bench/policies`` (the
   production command: real TLS, JSON logs at INFO, the audit, the policy and
   certificate watchers) and the baseline (:mod:`baseline`), waits until both answer
   and the startup audit is done, and reads the server's RSS.
3. For each workload (``route-create``, ``service-update``, ``mix``) runs the load
   generator (:mod:`loadgen`, its own process) closed-loop for the maximum throughput,
   then open-loop at half the *baseline's* maximum (and, for the mix, at half
   routewarden's own) for latency. Each comparison runs the servers in the order
   baseline, routewarden, routewarden, baseline, each for half the duration, and also
   reads each server's CPU time per request from ``/proc``.
4. Reads the server's RSS again, stops both, and runs the engine-only benchmarks
   (:mod:`decisions`): ``decide()`` per workload, and the scaling table (1k, 10k and
   100k routes, each in a fresh process).
5. Prints one row per target with its status: met, NOT MET, or not measured.

The machine is shared and noisy, so every routewarden figure is printed beside the
baseline's from the same minute, and the ratio is what to compare across runs; the CPU
time per request (and decide()'s CPU median) moves less with the machine's other load
than the throughput does. ``--profile DIR`` also samples both servers with py-spy
(:mod:`pyspy`); compare no figures of a profiled run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import generate
import pyspy
from decisions import rss_kib

WORKLOADS = ("route-create", "service-update", "mix")
REQUESTS_PER_WORKLOAD = 512


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_certificates(directory: Path) -> Path:
    subprocess.run([sys.executable, "-m", "webhook", "certs", "--dir", str(directory), "--key-type", "ecdsa"],
                   check=True, capture_output=True, cwd=REPO)
    return directory


def wait_ready(port: int, ca: Path, *, timeout: float, process: subprocess.Popen[bytes]) -> None:
    context = ssl.create_default_context(cafile=str(ca))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"https://localhost:{port}/readyz", context=context, timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server on port {port} not ready after {timeout:.0f}s")


def wait_for_log(path: Path, text: str, *, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in path.read_text(errors="replace"):
            return True
        time.sleep(0.2)
    return False


class Servers:
    """routewarden and the baseline, started side by side on the same certificate."""

    def __init__(self, work: Path, *, uvloop: bool, null_engine: bool = False) -> None:
        self.work = work
        self.null_engine = null_engine
        self.certs = make_certificates(work / "certs")
        self.uvloop = uvloop
        self.ports = {"routewarden": free_port(), "baseline": free_port()}
        self.log = work / "routewarden.log"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, state: Path) -> None:
        serve = ["serve", "--policies", str(HERE / "policies"), "--state", str(state),
                 "--cert-dir", str(self.certs), "--address", "127.0.0.1",
                 "--port", str(self.ports["routewarden"]), "--log-format", "json", "--log-level", "info"]
        # Both servers on the same event loop implementation, so the ratio compares like with like.
        serve += ["--event-loop", "uvloop" if self.uvloop else "asyncio"]
        command = [sys.executable, *([str(HERE / "null_engine.py")] if self.null_engine else ["-m", "webhook"]), *serve]
        with self.log.open("wb") as log:
            self.processes["routewarden"] = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=log)
        baseline = [sys.executable, str(HERE / "baseline.py"), "--cert-dir", str(self.certs),
                    "--port", str(self.ports["baseline"]), *(["--uvloop"] if self.uvloop else [])]
        self.processes["baseline"] = subprocess.Popen(baseline, cwd=REPO)
        for name, process in self.processes.items():
            wait_ready(self.ports[name], self.certs / "ca.crt", timeout=120, process=process)
        # The audit runs once at start (then every 300 s): keep it out of the measurements.
        if not wait_for_log(self.log, '"audit done"', timeout=120):
            print("warning: the startup audit did not finish in 120 s", file=sys.stderr)

    def pid(self, name: str) -> int:
        return self.processes[name].pid

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _suffixed(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def load(servers: Servers, name: str, requests: Path, *, mode: str, duration: float, warmup: float,
         connections: int, rate: float = 0.0, profile: Path | None = None) -> dict[str, Any]:
    """One load generator run against server ``name`` (raw: every latency, CPU totals);
    with ``profile``, py-spy samples the server meanwhile and appends to that file."""
    command = [sys.executable, str(HERE / "loadgen.py"), "--port", str(servers.ports[name]),
               "--ca", str(servers.certs / "ca.crt"), "--requests", str(requests), "--mode", mode,
               "--duration", str(duration), "--warmup", str(warmup), "--connections", str(connections),
               "--server-pid", str(servers.pid(name)), "--raw"]
    if mode == "open":
        command += ["--rate", f"{rate:.1f}"]
    sampler = None
    if profile is not None:
        sampler = pyspy.record(servers.pid(name), _suffixed(profile, ".part"), seconds=warmup + duration)
    out = subprocess.run(command, check=True, capture_output=True, cwd=REPO, text=True)
    if sampler is not None:
        _, errors = sampler.communicate()
        if sampler.returncode:
            print(f"py-spy failed: {errors.decode(errors='replace')[-500:]}", file=sys.stderr)
        else:
            part = _suffixed(profile, ".part")
            with _suffixed(profile, ".folded").open("a") as folded:  # collapsed stacks add up line by line
                folded.write(part.read_text())
            part.unlink()
            _suffixed(profile, ".top.txt").write_text(pyspy.top_table(_suffixed(profile, ".folded")) + "\n")
    return json.loads(out.stdout)


# Each comparison runs the servers in the order A B B A, each for half the duration: the
# machine is shared, and a load that rises or falls through the comparison then weighs on
# both servers alike instead of on whichever ran second.
ORDER = ("baseline", "routewarden", "routewarden", "baseline")


def compare(servers: Servers, requests: Path, *, mode: str, duration: float, warmup: float, connections: int,
            rate: float = 0.0, profile: Path | None = None) -> dict[str, dict[str, Any]]:
    """Both servers under the same load, ``{name: merged result}`` (see :data:`ORDER`)."""
    runs: dict[str, list[dict[str, Any]]] = {"baseline": [], "routewarden": []}
    for name in ORDER:
        sampled = None
        if profile is not None:
            sampled = profile if name == "routewarden" else _suffixed(profile, f".{name}")
        runs[name].append(load(servers, name, requests, mode=mode, duration=duration / 2, warmup=warmup,
                               connections=connections, rate=rate, profile=sampled))
    return {name: merged(parts) for name, parts in runs.items()}


def merged(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Load generator runs against one server as one: counts and CPU added, percentiles of all latencies."""
    latencies = sorted(x for run in runs for x in run["latencies_ms"])
    n, seconds = len(latencies), sum(run["seconds"] for run in runs)

    def percentile(q: float) -> float:
        return latencies[min(n - 1, int(q * n))] if n else float("nan")

    def per_request(key: str) -> float | None:
        totals = [run.get(key) for run in runs]
        return round(sum(totals) / n * 1e6, 1) if n and None not in totals else None  # type: ignore[arg-type]

    return {
        "mode": runs[0]["mode"], "runs": len(runs), "requests": n, "seconds": round(seconds, 3),
        **{key: sum(run[key] for run in runs) for key in ("errors", "denied", "unfinished")},
        "rps": round(n / seconds, 1) if seconds else 0.0, "rate": runs[0]["rate"],
        "p50_ms": percentile(0.50), "p99_ms": percentile(0.99), "p999_ms": percentile(0.999),
        "max_ms": latencies[-1] if n else None,
        "client_cpu_us_per_request": per_request("client_cpu_seconds"),
        "server_cpu_us_per_request": per_request("server_cpu_seconds"),
        "loop": runs[0]["loop"],
    }


def run_engine(args: argparse.Namespace) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    iterations = "300" if args.quick else "5000"
    micro = subprocess.run([sys.executable, str(HERE / "decisions.py"), "micro", "--iterations", iterations],
                           check=True, capture_output=True, cwd=REPO, text=True)
    scaling = []
    for routes in ([SMALL_ROUTES] if args.quick else args.scale):
        against = ["--against", str(SMALL_ROUTES)] if routes > SMALL_ROUTES else []
        out = subprocess.run([sys.executable, str(HERE / "decisions.py"), "scale", "--routes", str(routes),
                              "--iterations", "300" if args.quick else "3000", *against],
                             check=True, capture_output=True, cwd=REPO, text=True)
        scaling.append(json.loads(out.stdout))
    return json.loads(micro.stdout), scaling


# ----------------------------------------------------------------------------- tables
def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "-"


def _cpu(run: dict[str, Any]) -> float:
    return run.get("server_cpu_us_per_request") or 0.0


def _us(run: dict[str, Any], side: str) -> str:
    value = run.get(f"{side}_cpu_us_per_request")
    return "-" if value is None else f"{value:.0f}"


def http_tables(results: dict[str, Any]) -> str:
    rows = []
    labels = {"closed": "closed", "open": "open@{rate:.0f}/s", "open-rw": "open@{rate:.0f}/s (½ rw max)"}
    for workload in results["workloads"]:
        for mode, label in labels.items():
            if mode not in results["http"][workload]:
                continue
            r, b = results["http"][workload][mode]["routewarden"], results["http"][workload][mode]["baseline"]
            rows.append([workload, label.format(rate=b["rate"] or 0),
                         f"{r['rps']:.0f}", f"{b['rps']:.0f}", ratio(r["rps"], b["rps"]),
                         f"{r['p50_ms']:.2f}", f"{b['p50_ms']:.2f}", f"{r['p99_ms']:.2f}", f"{b['p99_ms']:.2f}",
                         ratio(r["p99_ms"], b["p99_ms"]), f"{r['p999_ms']:.2f}", f"{b['p999_ms']:.2f}",
                         r["errors"] + r["denied"] + r["unfinished"] + b["errors"] + b["denied"] + b["unfinished"],
                         f"{_us(r, 'server')}/{_us(b, 'server')}", ratio(_cpu(b), _cpu(r)),
                         f"{_us(r, 'client')}/{_us(b, 'client')}"])
    head = ["workload", "mode", "rw req/s", "base req/s", "ratio", "rw p50", "base p50", "rw p99", "base p99",
            "p99 ratio", "rw p999", "base p999", "failed", "server µs/req rw/base", "cpu base/rw",
            "client µs/req rw/base"]
    return table(head, rows)


def report(results: dict[str, Any]) -> str:
    m = results["machine"]
    out = [(f"routewarden benchmark: {m['cores']} cores, load average before {m['load_before']}, "
           f"after {m['load_after']}; server loop: {results['loop']}; "
           f"{results['size']['routes']} routes / {results['size']['namespaces']} namespaces / "
           f"{results['size']['gateways']} Gateways / {results['size']['grants']} ReferenceGrants"
           + ("; NULL ENGINE: routewarden's decide() answers at once" if results.get("null_engine") else "")),
           "", ("HTTP over TLS (latency in ms at the client; 'base' = bare aiohttp baseline, same run; "
            "failed = non-200, denied, or still queued 5 s after an open-loop run)"),
           http_tables(results), "",
           (f"routewarden RSS: {results['rss_mib']['loaded']:.0f} MiB with the state loaded, "
           f"{results['rss_mib']['after']:.0f} MiB after the run (baseline: {results['rss_mib']['baseline']:.0f} MiB)"),
           "", "Engine only: decide() per review (µs; CPU = this thread's CPU time, steadier on a shared machine)",
           table(["workload", "CPU median", "median", "p99"],
                 [[w, _cpu_median(v), v["median_us"], v["p99_us"]] for w, v in results["engine"].items()]),
           "", ("Scaling: decide() for the HTTPRoute CREATE, and the memory of the cluster view "
                "(each size in a fresh process; RSS = the whole process with the view loaded)"),
           table(["routes", "namespaces", "grants", "objects", "load s", "CPU median µs", "median µs", "p99 µs",
                  "RSS MiB", "state MiB", "KiB/object"],
                 [[s["routes"], s["namespaces"], s["grants"], s["objects"], s["load_seconds"], _cpu_median(s),
                   s["median_us"], s["p99_us"], s["rss_mib"], s["state_mib"], s["kib_per_object"]]
                  for s in results["scaling"]])]
    for s in results["scaling"]:
        if "growth" in s:
            g = s["growth"]
            out.append(f"CPU median at {s['routes']} routes / at {g['against_routes']}, timed in turns in one "
                       f"process: {g['cpu_median_us']} / {g['against_cpu_median_us']} µs = {g['ratio']:.2f}")
    out += ["", "Targets (this run)", table(["target", "measured", "status"], targets(results))]
    return "\n".join(out)


# ----------------------------------------------------------------------------- targets
MIX_RATIO, WORKLOAD_RATIO = 0.50, 0.45
DECIDE_MEDIAN_US, DECIDE_GROWTH = 40.0, 1.20
SMALL_ROUTES, LARGE_ROUTES = 1_000, 100_000
KIB_PER_OBJECT, LARGE_RSS_MIB = 2.5, 500.0
P99_RATIO = 2.0


def _cpu_median(timing: dict[str, Any]) -> float:
    """decide()'s median in CPU time (results of older runs have only the elapsed one)."""
    return timing.get("cpu_median_us", timing["median_us"])


def _status(met: bool | None, why: str = "") -> str:
    if met is None:
        return f"not measured{f' ({why})' if why else ''}"
    return "met" if met else "NOT MET"


def targets(results: dict[str, Any]) -> list[list[str]]:
    """``[target, measured, status]`` for every target of the benchmark, from one run's results."""
    rows: list[list[str]] = []
    http = results.get("http", {})
    quick = "full bench only" if results.get("quick") else "not run"

    def throughput(workload: str, floor: float) -> None:
        run = http.get(workload, {}).get("closed")
        name = f"{workload} closed-loop throughput ratio ≥ {floor:.2f}"
        if not run:
            rows.append([name, "-", _status(None, "not run")])
            return
        value = run["routewarden"]["rps"] / run["baseline"]["rps"]
        cpu = [run[side].get("server_cpu_us_per_request") for side in ("baseline", "routewarden")]
        shown = f"{value:.2f} (CPU {cpu[0] / cpu[1]:.2f})" if all(cpu) else f"{value:.2f}"
        rows.append([name, shown, _status(value >= floor)])

    throughput("mix", MIX_RATIO)
    throughput("route-create", WORKLOAD_RATIO)
    throughput("service-update", WORKLOAD_RATIO)

    engine = results.get("engine", {}).get("route-create")
    name = f"decide() median (CPU), HTTPRoute CREATE at 10k routes ≤ {DECIDE_MEDIAN_US:.0f} µs"
    if engine:
        measured = f"{_cpu_median(engine)} µs ({engine['median_us']} elapsed)"
        rows.append([name, measured, _status(_cpu_median(engine) <= DECIDE_MEDIAN_US)])
    else:
        rows.append([name, "-", _status(None, "not run")])

    by_routes = {s["routes"]: s for s in results.get("scaling", [])}
    small, large = by_routes.get(SMALL_ROUTES), by_routes.get(LARGE_ROUTES)
    name = f"decide() median (CPU) at {LARGE_ROUTES // 1000}k routes / at {SMALL_ROUTES // 1000}k ≤ {DECIDE_GROWTH:.2f}"
    if large and large.get("growth", {}).get("against_routes") == SMALL_ROUTES:
        g = large["growth"]  # both sizes timed in turns in one process: the steadier figure
        rows.append([name, f"{g['ratio']:.2f} ({g['cpu_median_us']} / {g['against_cpu_median_us']} µs, in turns)",
                     _status(g["ratio"] <= DECIDE_GROWTH)])
    elif small and large:
        growth = _cpu_median(large) / _cpu_median(small)
        rows.append([name, f"{growth:.2f} ({_cpu_median(large)} / {_cpu_median(small)} µs)",
                     _status(growth <= DECIDE_GROWTH)])
    else:
        rows.append([name, "-", _status(None, quick)])

    name = f"memory per stored object ≤ {KIB_PER_OBJECT} KiB (at {LARGE_ROUTES // 1000}k routes)"
    rows.append([name, f"{large['kib_per_object']} KiB", _status(large["kib_per_object"] <= KIB_PER_OBJECT)]
                if large else [name, "-", _status(None, quick)])
    name = (f"RSS with {LARGE_ROUTES // 1000}k routes, {LARGE_ROUTES // 5000}k namespaces, "
            f"{LARGE_ROUTES // 2000}k grants < {LARGE_RSS_MIB:.0f} MiB")
    rows.append([name, f"{large['rss_mib']} MiB", _status(large["rss_mib"] < LARGE_RSS_MIB)]
                if large else [name, "-", _status(None, quick)])

    run = http.get("mix", {}).get("open-rw")
    name = f"mix p99 at half routewarden's maximum ≤ {P99_RATIO:g}× the baseline's p99 at that rate"
    if run:
        value = run["routewarden"]["p99_ms"] / run["baseline"]["p99_ms"]
        measured = f"{value:.2f} ({run['routewarden']['p99_ms']:.2f} / {run['baseline']['p99_ms']:.2f} ms)"
        rows.append([name, measured, _status(value <= P99_RATIO)])
    else:
        rows.append([name, "-", _status(None, "not run")])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: small state, about a minute")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds measured per load run")
    parser.add_argument("--warmup", type=float, default=1.5, help="seconds of load before measuring")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections (the apiserver's)")
    parser.add_argument("--routes", type=int, default=10_000)
    parser.add_argument("--scale", type=int, nargs="+", default=[SMALL_ROUTES, 10_000, LARGE_ROUTES],
                        help="route counts of the scaling table (each with routes/5 namespaces, routes/2 grants)")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop",
                        help="event loop of both servers (default: uvloop, as `routewarden serve` uses)")
    parser.add_argument("--no-engine", action="store_true", help="skip the engine-only benchmarks")
    parser.add_argument("--null-engine", action="store_true",
                        help="serve with a decide() that answers at once (bench/null_engine.py): what the "
                             "request path costs outside the rules")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="sample routewarden with py-spy during each closed-loop run into DIR "
                             "(bench/pyspy.py; py-spy takes CPU from the servers, so compare no figures "
                             "of a profiled run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.routes = 2.0, 0.5, 1_000
    size = generate.Size(routes=args.routes, namespaces=max(1, args.routes // 5), gateways=50,
                         grants=args.routes // 2)
    results: dict[str, Any] = {
        "machine": {"cores": os.cpu_count(), "load_before": round(os.getloadavg()[0], 2)},
        "size": {"routes": size.routes, "namespaces": size.namespaces, "gateways": size.gateways,
                 "grants": size.grants},
        "loop": args.loop, "workloads": WORKLOADS, "http": {}, "quick": args.quick, "null_engine": args.null_engine,
    }
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
        for workload in WORKLOADS:  # runs append to these: start from none
            for name in (workload, f"{workload}.baseline"):
                _suffixed(args.profile / name, ".folded").unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="routewarden-bench-") as tmp:
        work = Path(tmp)
        state = work / "state"
        generate.write_cluster(state, size)
        requests = {}
        for workload in WORKLOADS:
            bodies = [generate.request_bytes(path, doc)
                      for path, doc in generate.reviews(workload, REQUESTS_PER_WORKLOAD, size)]
            requests[workload] = generate.write_requests(work / f"{workload}.requests", bodies)
        servers = Servers(work, uvloop=args.loop == "uvloop", null_engine=args.null_engine)
        try:
            servers.start(state)
            results["rss_mib"] = {"loaded": rss_kib(servers.pid("routewarden")) / 1024}
            common = {"duration": args.duration, "warmup": args.warmup, "connections": args.connections}
            for workload in WORKLOADS:
                http = results["http"][workload] = {}
                profile = args.profile / workload if args.profile else None
                http["closed"] = compare(servers, requests[workload], mode="closed", profile=profile, **common)
                print(f"{workload} closed: {http['closed']}", file=sys.stderr)
                # The latency at half the baseline's maximum, and for the mix the target: at half
                # routewarden's own maximum, its latency when it is not overloaded.
                rates = {"open": http["closed"]["baseline"]["rps"] / 2}
                if workload == "mix":
                    rates["open-rw"] = http["closed"]["routewarden"]["rps"] / 2
                for mode, rate in rates.items():
                    http[mode] = compare(servers, requests[workload], mode="open", rate=rate, **common)
                    print(f"{workload} {mode}: {http[mode]}", file=sys.stderr)
            results["rss_mib"]["after"] = rss_kib(servers.pid("routewarden")) / 1024
            results["rss_mib"]["baseline"] = rss_kib(servers.pid("baseline")) / 1024
        finally:
            servers.stop()
    if args.no_engine:
        results["engine"], results["scaling"] = {}, []
    else:
        results["engine"], results["scaling"] = run_engine(args)
    results["machine"]["load_after"] = round(os.getloadavg()[0], 2)
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
