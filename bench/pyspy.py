"""Where a running server spends its time: py-spy samples, summed into a top-N table.

``make bench BENCH_ARGS="--profile DIR"`` records the routewarden server with py-spy
(a sampling profiler in its own process: nothing is instrumented, the server runs its
production code) during each closed-loop run, and writes per workload:

* ``DIR/<workload>.folded``: the samples as collapsed stacks (``frame;frame;... count``),
  the input of any flame graph tool (``flamegraph.pl``, speedscope, inferno);
* ``DIR/<workload>.top.txt``: the top functions by *own* time (samples where the function
  itself was running) with their *total* time (samples where it was on the stack), in
  percent of the samples in which the server was busy (py-spy leaves out the time the
  event loop waits for the network).

Reading a top table: TLS and HTTP parsing in C show as the Python function that called
them (``data_received`` of uvloop's SSL protocol, aiohttp's ``feed_data``), since py-spy
samples Python frames only.

    python bench/pyspy.py top FILE.folded [--limit 20]    # the table of a recorded profile

py-spy comes with ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*)\)$")


def py_spy() -> str | None:
    """The py-spy executable beside this Python, or on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def record(pid: int, output: Path, *, seconds: float, rate: int = 200) -> subprocess.Popen[bytes]:
    """Start sampling ``pid`` for ``seconds`` into ``output`` (collapsed stacks); wait on the result."""
    exe = py_spy()
    if exe is None:
        raise RuntimeError("py-spy is not installed (pip install -e '.[bench]')")
    command = [exe, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate", str(rate),
               "--format", "raw", "--nolineno", "--nonblocking", "--output", str(output)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def short(frame: str) -> str:
    """``function (path/to/module.py)`` as ``module.py:function``, the package kept for the project's files."""
    match = FRAME.match(frame)
    if not match:
        return frame
    path = match["file"]
    if "webhook/" in path:
        path = "webhook/" + path.split("webhook/", 1)[1]
    else:
        path = path.rsplit("/", 1)[-1]
    return f"{path}:{match['function']}"


def read_folded(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append(([short(f) for f in stack.split(";")], int(count)))
    return stacks


def top(stacks: list[tuple[list[str], int]], limit: int = 20) -> tuple[int, list[tuple[str, float, float]]]:
    """``(samples, [(function, own %, total %)])`` for the ``limit`` functions with the most own time."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for frames, count in stacks:
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    if not samples:
        return 0, []
    return samples, [(f, 100 * n / samples, 100 * total[f] / samples) for f, n in own.most_common(limit)]


# Where a sample's time goes: the part of routewarden nearest the running code decides
# (C code such as orjson or OpenSSL counts for the Python function that called it).
AREAS = (
    ("decision (engine, rules, mutation)", ("webhook/engine.py", "webhook/rules/", "webhook/gatewayapi/",
                                            "webhook/mutation/", "webhook/state/", "webhook/policy/",
                                            "webhook/decision.py", "webhook/runtime.py")),
    ("envelope (decode, parse, build the answer)", ("webhook/admission.py",)),
    ("telemetry (metrics, decision log, spans)", ("webhook/telemetry.py", "webhook/logs.py", "logging/",
                                                  "prometheus_client/", "opentelemetry/")),
    ("handlers and middlewares", ("webhook/",)),
)
OTHER = "HTTP, TLS and the event loop (aiohttp, uvloop, ssl)"
SERVER = ("aiohttp/", "asyncio/", "ssl.py", "uvloop/", "multidict/", "yarl/", "selectors.py")


def area(paths: list[str]) -> str:
    """The area of the frame nearest the leaf that belongs to one; helpers such as
    ``copy`` or ``jsonpatch`` count for their caller, the server's libraries for themselves."""
    for path in reversed(paths):
        for name, prefixes in AREAS:
            if any(prefix in path for prefix in prefixes):
                return name
        if any(prefix in path for prefix in SERVER):
            return OTHER
    return OTHER


def breakdown(path: Path) -> tuple[int, list[tuple[str, float]]]:
    """``(samples, [(area, %)])``: the busy samples by the part of the server they were in."""
    counts: Counter[str] = Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not (stack and count.isdigit()):
            continue
        frames = stack.split(";")
        paths = [(FRAME.match(f) or FRAME.match("? (?)"))["file"] for f in frames]  # type: ignore[index]
        counts[area(paths)] += int(count)
        samples += int(count)
    names = [name for name, _ in AREAS] + [OTHER]
    return samples, [(name, 100 * counts[name] / samples if samples else 0.0) for name in names]


def top_table(path: Path, limit: int = 20) -> str:
    samples, rows = top(read_folded(path), limit)
    lines = [f"{samples} samples (busy time only)", "", f"{'%':>6}  area", f"{'-' * 6}  {'-' * 4}"]
    lines += [f"{share:6.1f}  {name}" for name, share in breakdown(path)[1]]
    lines += ["", f"{'own %':>6}  {'total %':>7}  function", f"{'-' * 6}  {'-' * 7}  {'-' * 8}"]
    lines += [f"{o:6.1f}  {t:7.1f}  {f}" for f, o, t in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("top", help="the top table of a recorded profile")
    t.add_argument("folded", type=Path)
    t.add_argument("--limit", type=int, default=20)
    args = parser.parse_args(argv)
    print(top_table(args.folded, args.limit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
