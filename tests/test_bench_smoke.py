"""The benchmark code still runs: generators, the engine micro-benchmark, the client's parser.

Structure only, never timings (bench/run.py prints those; the machine is shared).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import decisions
import generate
import loadgen
import pyspy
import run

SMALL = generate.Size(routes=60, namespaces=12, gateways=5, grants=30)


def test_the_generated_cluster_has_the_asked_sizes():
    """Routes, namespaces, Gateways and grants come in the numbers asked for."""
    objects = generate.cluster(SMALL)
    kinds = [o["kind"] for o in objects]
    assert kinds.count("HTTPRoute") == 60
    assert kinds.count("Gateway") == 5
    assert kinds.count("ReferenceGrant") == 30
    assert kinds.count("Namespace") == 12 + generate.PLATFORM_NAMESPACES


def test_the_generated_cluster_is_the_same_for_the_same_seed():
    """A seed gives the same bytes every time, so runs compare like with like."""
    assert orjson.dumps(generate.cluster(SMALL, seed=3)) == orjson.dumps(generate.cluster(SMALL, seed=3))
    assert orjson.dumps(generate.cluster(SMALL, seed=3)) != orjson.dumps(generate.cluster(SMALL, seed=4))


def test_a_route_create_review_has_the_shape_the_benchmark_promises():
    """3 parentRefs, 4 hostnames, 6 rules, and a backendRef into another namespace."""
    (path, review), = generate.reviews("route-create", 1, SMALL)
    spec = review["request"]["object"]["spec"]
    namespace = review["request"]["namespace"]
    assert path == "/validate"
    assert (len(spec["parentRefs"]), len(spec["hostnames"]), len(spec["rules"])) == (3, 4, 6)
    assert any(ref.get("namespace", namespace) != namespace for rule in spec["rules"] for ref in rule["backendRefs"])


@pytest.mark.parametrize("workload", [*generate.WORKLOADS, "mix"])
def test_every_bench_review_is_allowed_without_findings(workload):
    """The engine allows every generated review cleanly: the load measures checking, not denying."""
    state = decisions.load_state(SMALL)
    policy_set = decisions.policies()
    for webhook, request in decisions.parsed(workload, 8, SMALL):
        decision = decisions.decide(request, policy_set, state, webhook=webhook)
        assert decision.allowed and not decision.violations and not decision.warnings, (workload, decision)


def test_the_service_update_gets_a_patch():
    """The generated Service review exercises the mutation: its answer carries a JSON Patch."""
    state = decisions.load_state(SMALL)
    (webhook, request), = decisions.parsed("service-update", 1, SMALL)
    assert decisions.decide(request, decisions.policies(), state, webhook=webhook).patch


def test_the_engine_micro_benchmark_reports_a_median_and_p99_per_workload():
    """A handful of iterations give the table's columns for every workload."""
    result = decisions.micro(decisions.load_state(SMALL), SMALL, iterations=20)
    assert set(result) == set(generate.WORKLOADS)
    for row in result.values():
        assert row["calls"] == 20 and 0 < row["median_us"] <= row["p99_us"] and 0 < row["cpu_median_us"]


def test_stored_requests_read_back_byte_for_byte(tmp_path):
    """What the runner writes is exactly what the load generator sends."""
    requests = [generate.request_bytes(path, doc) for path, doc in generate.reviews("mix", 4, SMALL)]
    assert loadgen.read_requests(generate.write_requests(tmp_path / "r", requests)) == requests


@pytest.mark.parametrize(("head", "length"), [
    (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 42", 42),
    (b"HTTP/1.1 400 Bad Request\r\ncontent-length:7", 7),
    (b"HTTP/1.1 204 No Content\r\nServer: x", 0),
])
def test_the_client_reads_the_content_length(head, length):
    """The raw client finds a response's length whatever the header's case and spacing."""
    assert loadgen.content_length(head) == length


def run_results(*, mix: float, route: float, service: float, median: float, small: float, large: float | None,
                kib: float, rss: float, p99: tuple[float, float], quick: bool = False) -> dict[str, Any]:
    """What bench/run.py collects, with the figures each target reads."""
    def closed(r: float) -> dict[str, Any]:
        return {"closed": {"routewarden": {"rps": 1000 * r}, "baseline": {"rps": 1000.0}}}

    http = {"route-create": closed(route), "service-update": closed(service), "mix": closed(mix)}
    http["mix"]["open-rw"] = {"routewarden": {"p99_ms": p99[0]}, "baseline": {"p99_ms": p99[1]}}
    scaling = [{"routes": 1_000, "median_us": small, "kib_per_object": kib, "rss_mib": 40.0}]
    if large is not None:
        scaling.append({"routes": 100_000, "median_us": large, "kib_per_object": kib, "rss_mib": rss})
    return {"http": http, "engine": {"route-create": {"median_us": median}}, "scaling": scaling, "quick": quick}


def statuses(results: dict[str, Any]) -> list[str]:
    return [status for _, _, status in run.targets(results)]


def test_the_benchmark_reports_every_target_met_when_the_figures_are_within():
    """Figures at or inside every bound read as met, one row per performance target."""
    results = run_results(mix=0.5, route=0.45, service=0.6, median=40.0, small=30.0, large=36.0, kib=2.5,
                          rss=499.0, p99=(4.0, 2.0))
    assert statuses(results) == ["met"] * 8


@pytest.mark.parametrize(("change", "row"), [
    ({"mix": 0.49}, 0), ({"route": 0.44}, 1), ({"service": 0.3}, 2), ({"median": 40.1}, 3), ({"large": 36.1}, 4),
    ({"kib": 2.6}, 5), ({"rss": 500.0}, 6), ({"p99": (4.1, 2.0)}, 7),
])
def test_a_figure_past_its_bound_is_reported_not_met(change, row):
    """Each target turns NOT MET on its own figure, and only that one."""
    figures = {"mix": 0.5, "route": 0.45, "service": 0.6, "median": 40.0, "small": 30.0, "large": 36.0, "kib": 2.5,
               "rss": 499.0, "p99": (4.0, 2.0)} | change
    assert statuses(run_results(**figures)) == ["NOT MET" if i == row else "met" for i in range(8)]


def test_the_quick_run_says_which_targets_only_the_full_bench_measures():
    """Without the 100k-route size, the growth, memory and RSS targets are not measured, and say why."""
    results = run_results(mix=0.5, route=0.5, service=0.5, median=1.0, small=1.0, large=None, kib=1.0, rss=1.0,
                          p99=(1.0, 1.0), quick=True)
    assert statuses(results)[4:7] == ["not measured (full bench only)"] * 3


def test_the_profile_table_sums_own_and_total_time_per_function(tmp_path):
    """Collapsed stacks become own and total percentages, and each sample counts in one area."""
    folded = tmp_path / "p.folded"
    folded.write_text(
        "run (asyncio/runners.py);admit (webhook/handlers.py);decide (webhook/engine.py) 6\n"
        "run (asyncio/runners.py);admit (webhook/handlers.py);decode_review (webhook/admission.py) 3\n"
        "run (asyncio/runners.py);data_received (aiohttp/web_protocol.py) 1\n")
    samples, rows = pyspy.top(pyspy.read_folded(folded))
    assert samples == 10
    assert rows == [("webhook/engine.py:decide", 60.0, 60.0), ("webhook/admission.py:decode_review", 30.0, 30.0),
                    ("web_protocol.py:data_received", 10.0, 10.0)]  # admit never runs itself: no own time
    shares = dict(pyspy.breakdown(folded)[1])
    assert shares[pyspy.AREAS[0][0]] == 60.0 and shares[pyspy.AREAS[1][0]] == 30.0 and shares[pyspy.OTHER] == 10.0


def test_the_load_generator_reads_a_process_cpu_time():
    """The server's CPU per request comes from /proc: a busy process shows a positive, growing time."""
    first = loadgen.cpu_seconds(os.getpid())
    sum(i * i for i in range(300_000))
    assert loadgen.cpu_seconds(os.getpid()) > first >= 0


def test_the_halves_of_a_comparison_merge_into_one_run():
    """Counts and CPU add up, rates and percentiles come from all the latencies of both halves."""
    def half(latencies, seconds, cpu):
        return {"mode": "closed", "rate": None, "loop": "uvloop", "latencies_ms": latencies, "seconds": seconds,
                "errors": 1, "denied": 0, "unfinished": 0, "client_cpu_seconds": cpu, "server_cpu_seconds": 2 * cpu}

    result = run.merged([half([1.0, 3.0], 1.0, 0.001), half([2.0, 4.0, 5.0, 6.0], 2.0, 0.002)])
    assert (result["requests"], result["rps"], result["errors"], result["runs"]) == (6, 2.0, 2, 2)
    assert (result["p50_ms"], result["p99_ms"], result["max_ms"]) == (4.0, 6.0, 6.0)
    assert (result["client_cpu_us_per_request"], result["server_cpu_us_per_request"]) == (500.0, 1000.0)


def test_the_growth_is_timed_in_turns_against_a_smaller_view():
    """decide() on two views in one process gives both CPU medians and their ratio."""
    result = decisions.growth(decisions.load_state(SMALL), SMALL, generate.Size(routes=20, namespaces=4, gateways=5,
                                                                                grants=10), iterations=24, rounds=2)
    assert result["against_routes"] == 20 and result["cpu_median_us"] > 0 and result["against_cpu_median_us"] > 0
    assert result["ratio"] == pytest.approx(result["cpu_median_us"] / result["against_cpu_median_us"], rel=0.01)


def test_the_growth_target_reads_the_figure_timed_in_turns():
    """When the large size was timed in turns against 1k routes, that ratio decides the target."""
    results = run_results(mix=0.5, route=0.5, service=0.5, median=1.0, small=10.0, large=30.0, kib=1.0, rss=1.0,
                          p99=(1.0, 1.0))
    results["scaling"][1]["growth"] = {"against_routes": 1_000, "cpu_median_us": 31.0, "against_cpu_median_us": 30.0,
                                       "ratio": 1.03}
    assert run.targets(results)[4][2] == "met"  # the separate processes' 30 / 10 would say NOT MET
