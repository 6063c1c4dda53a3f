"""Engine-only benchmarks: the policy decision itself, and how it scales with the cluster.

* :func:`time_decisions`: ``decide()`` on already-parsed requests (no HTTP, no JSON),
  one ``perf_counter_ns`` pair per call, over distinct reviews so that nothing is
  answered from a cache the real server would not have.
* ``python bench/decisions.py scale --routes N``: in a fresh process, the memory the
  cluster view takes (RSS before and after loading it, per object) and the decision
  time at that size. A fresh process per size keeps one size's garbage out of the next
  one's RSS.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
import generate

from webhook.admission import AdmissionRequest, parse_review
from webhook.engine import decide
from webhook.policy.loader import load_paths
from webhook.policy.model import PolicySet
from webhook.state.store import ClusterState

POLICIES = Path(__file__).resolve().parent / "policies"


def rss_kib(pid: int | str = "self") -> int:
    """VmRSS of a process in KiB, from /proc (what the kernel charges it)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def policies() -> PolicySet:
    return load_paths([POLICIES])


def load_state(size: generate.Size, seed: int = 1) -> ClusterState:
    """The view as ``serve --state`` builds it: objects decoded from JSON, then applied."""
    document = orjson.loads(orjson.dumps({"kind": "List", "items": generate.cluster(size, seed)}))
    return ClusterState.from_objects(document["items"])


def parsed(workload: str, count: int, size: generate.Size) -> list[tuple[str, AdmissionRequest]]:
    return [(path.strip("/"), parse_review(orjson.loads(orjson.dumps(doc))))
            for path, doc in generate.reviews(workload, count, size)]


def time_decisions(requests: list[tuple[str, AdmissionRequest]], policy_set: PolicySet, state: ClusterState, *,
                   iterations: int) -> tuple[list[int], list[int]]:
    """Nanoseconds per ``decide()`` call, ``iterations`` calls cycling through ``requests``:
    elapsed (``perf_counter``) and this thread's CPU time (``thread_time``, less the cost of
    reading that clock). On a machine other work shares, the CPU time is the steadier
    figure: elapsed time also counts the moments another process had the core."""
    wall, cpu = [], []
    clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    n = len(requests)
    for i in range(iterations):
        webhook, request = requests[i % n]
        started, cpu_started = clock(), cpu_clock()
        decide(request, policy_set, state, webhook=webhook)
        cpu.append(cpu_clock() - cpu_started)
        wall.append(clock() - started)
    overhead = _cpu_clock_cost()
    return wall, [max(0, c - overhead) for c in cpu]


def _cpu_clock_cost() -> int:
    """What one ``thread_time_ns`` pair measures around nothing (a system call, about 1 µs)."""
    clock = time.thread_time_ns
    gaps = []
    for _ in range(200):
        started = clock()
        gaps.append(clock() - started)
    return int(statistics.median(gaps))


def summary(ns: tuple[list[int], list[int]]) -> dict[str, float]:
    wall, cpu = sorted(ns[0]), sorted(ns[1])
    return {"median_us": round(statistics.median(wall) / 1e3, 1),
            "p99_us": round(wall[min(len(wall) - 1, int(0.99 * len(wall)))] / 1e3, 1),
            "cpu_median_us": round(statistics.median(cpu) / 1e3, 1),
            "calls": len(wall)}


def micro(state: ClusterState, size: generate.Size, *, iterations: int,
          workloads: tuple[str, ...] = generate.WORKLOADS) -> dict[str, dict[str, float]]:
    """Median and p99 of ``decide()`` per workload on ``state``."""
    policy_set = policies()
    out = {}
    for workload in workloads:
        requests = parsed(workload, 256, size)
        decisions = [decide(r, policy_set, state, webhook=w) for w, r in requests]
        if not all(d.allowed and not d.violations for d in decisions):
            raise RuntimeError(f"{workload}: the bench reviews should all be allowed without findings")
        time_decisions(requests, policy_set, state, iterations=min(iterations, 500))  # warm up
        out[workload] = summary(time_decisions(requests, policy_set, state, iterations=iterations))
    return out


def sized(routes: int) -> generate.Size:
    return generate.Size(routes=routes, namespaces=max(1, routes // 5), gateways=50, grants=routes // 2)


def scale(routes: int, *, iterations: int, seed: int = 1, against: int | None = None) -> dict[str, Any]:
    """Memory and decide() time at ``routes``; with ``against``, also the CPU median's
    growth from a view of ``against`` routes loaded afterwards in the same process, both
    timed in alternation, so that the machine's other load weighs on both alike (separate
    processes minutes apart differ by a quarter on a shared machine)."""
    size = sized(routes)
    gc.collect()
    before = rss_kib()
    started = time.perf_counter()
    state = load_state(size, seed)
    load_seconds = time.perf_counter() - started
    gc.collect()
    after = rss_kib()
    objects = sum(state.count(k) for k in ("Namespace", "Gateway", "GatewayClass", "HTTPRoute", "ReferenceGrant"))
    timing = micro(state, size, iterations=iterations, workloads=("route-create",))["route-create"]
    result = {"routes": routes, "namespaces": size.namespaces, "grants": size.grants, "objects": objects,
              "load_seconds": round(load_seconds, 2), "rss_mib": round(after / 1024, 1),
              "state_mib": round((after - before) / 1024, 1),
              "kib_per_object": round((after - before) / objects, 2), **timing}
    if against is not None:
        result["growth"] = growth(state, size, sized(against), iterations=iterations, seed=seed)
    return result


def growth(state: ClusterState, size: generate.Size, small: generate.Size, *, iterations: int,
           seed: int = 1, rounds: int = 6) -> dict[str, Any]:
    """decide()'s CPU median for the HTTPRoute CREATE on ``state`` over its median on a view of
    ``small``, the two timed in ``rounds`` alternating rounds."""
    policy_set = policies()
    small_state = load_state(small, seed)
    sides = {"large": (parsed("route-create", 256, size), state), "small": (parsed("route-create", 256, small),
                                                                            small_state)}
    cpu: dict[str, list[int]] = {"large": [], "small": []}
    per_round = max(1, iterations // rounds)
    for name, (requests, view) in sides.items():
        time_decisions(requests, policy_set, view, iterations=min(per_round, 300))  # warm up
    for _ in range(rounds):
        for name, (requests, view) in sides.items():
            cpu[name] += time_decisions(requests, policy_set, view, iterations=per_round)[1]
    medians = {name: statistics.median(values) / 1e3 for name, values in cpu.items()}
    return {"against_routes": small.routes, "cpu_median_us": round(medians["large"], 1),
            "against_cpu_median_us": round(medians["small"], 1),
            "ratio": round(medians["large"] / medians["small"], 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("scale", help="memory and decision time at one state size (fresh process)")
    s.add_argument("--routes", type=int, required=True)
    s.add_argument("--iterations", type=int, default=3000)
    s.add_argument("--against", type=int, help="also time decide() against a view of this many routes, in turns")
    m = sub.add_parser("micro", help="decide() median and p99 per workload at the default size")
    m.add_argument("--iterations", type=int, default=5000)
    args = parser.parse_args(argv)
    if args.command == "scale":
        result: Any = scale(args.routes, iterations=args.iterations, against=args.against)
    else:
        size = generate.Size()
        result = micro(load_state(size), size, iterations=args.iterations)
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
