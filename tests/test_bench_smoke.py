"""The benchmark code still runs: generators, the engine micro-benchmark, the client's parser.

Structure only, never timings (bench/run.py prints those; the machine is shared).
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import decisions
import generate
import loadgen

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
        assert row["calls"] == 20 and 0 < row["median_us"] <= row["p99_us"]


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
