"""Property: an UPDATE that changes only metadata is always allowed by the validating webhook.

Whatever is wrong with the object (every object of the scenario folders, the denied ones
included, and routes built from any mix of parents, hostnames and backends), whatever
the policies and the cluster view, a write that changes only labels, annotations,
finalizers, ownerReferences or the like, or that finishes a deletion, is allowed: a
denial would wedge a GitOps sync or leave the object Terminating for good.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webhook.engine import decide
from webhook.offline import synthesize_request
from webhook.policy.loader import load_paths
from webhook.policytest import load_objects
from webhook.state.store import ClusterState

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = REPO / "tests" / "scenarios"
POLICIES = load_paths([REPO / "policies", SCENARIOS / "_shared" / "tenancy.yaml", SCENARIOS / "guardrails" / "policy.yaml",
                       SCENARIOS / "modes" / "policy.yaml"])
CLUSTER = load_objects([SCENARIOS / "_shared" / "cluster.yaml"])
JUDGED = ("HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute", "Gateway", "ListenerSet", "ReferenceGrant")


def scenario_objects() -> list[dict[str, Any]]:
    """Every Gateway API object the scenario folders hold or request, allowed or denied."""
    objects = load_objects(sorted(SCENARIOS.rglob("*.yaml")))
    for test in SCENARIOS.rglob("routewarden-test.yaml"):
        for req in yaml.safe_load(test.read_text()).get("requests") or []:
            objects += [req[k] for k in ("object", "oldObject") if isinstance(req.get(k), dict)]
    return [o for o in objects if o.get("kind") in JUDGED and isinstance(o.get("metadata"), dict)]


OBJECTS = scenario_objects()
STATES = [ClusterState.from_objects(CLUSTER), ClusterState.from_objects([*CLUSTER, *OBJECTS]), ClusterState.from_objects([])]

NAMES = st.sampled_from(["shared", "other", "waypoint", "echo"])
NAMESPACES = st.sampled_from(["infra", "apples", "bananas", "cherries", "unknown"])
HOSTNAMES = st.sampled_from(["shop.bananas.example.com", "*.apples.example.com", "apples.example.com",
                             "intruder.example.com", "*.example.com", "x.org"])
PARENTS = st.fixed_dictionaries(
    {"name": NAMES, "namespace": NAMESPACES},
    optional={"sectionName": st.sampled_from(["http", "https", "tcp", "nope"]), "port": st.sampled_from([80, 443, 1]),
              "kind": st.sampled_from(["Gateway", "ListenerSet", "Service"]),
              "group": st.sampled_from(["gateway.networking.k8s.io", ""])},
)
BACKENDS = st.fixed_dictionaries({"name": NAMES}, optional={"namespace": NAMESPACES, "port": st.just(8080)})


@st.composite
def routes(draw: st.DrawFn) -> dict[str, Any]:
    """A route of any kind with any parents, hostnames and backends."""
    kind = draw(st.sampled_from(JUDGED[:5]))
    spec: dict[str, Any] = {"parentRefs": draw(st.lists(PARENTS, max_size=3)),
                            "rules": [{"backendRefs": draw(st.lists(BACKENDS, max_size=2))}]}
    if kind in ("HTTPRoute", "GRPCRoute", "TLSRoute"):
        spec["hostnames"] = draw(st.lists(HOSTNAMES, max_size=3, unique=True))
    meta = {"name": draw(NAMES), "namespace": draw(NAMESPACES), "creationTimestamp": "2026-03-01T00:00:00Z"}
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": kind, "metadata": meta, "spec": spec}


LABELS = st.dictionaries(st.sampled_from(["app", "team", "argocd.argoproj.io/instance", "kustomize.toolkit.fluxcd.io/name"]),
                         st.sampled_from(["fruits", "apples", ""]), max_size=3)
METADATA = st.fixed_dictionaries({}, optional={
    "labels": LABELS,
    "annotations": LABELS,
    "finalizers": st.lists(st.sampled_from(["example.com/cleanup", "gateway-exists-finalizer.gateway.networking.k8s.io"]),
                           max_size=2, unique=True),
    "ownerReferences": st.lists(st.fixed_dictionaries({
        "apiVersion": st.just("argoproj.io/v1alpha1"), "kind": st.just("Application"), "name": NAMES,
        "uid": st.just("5d6b1a43-0000-4000-8000-000000000000")}), max_size=1),
    "resourceVersion": st.sampled_from(["1", "2"]),
    "deletionTimestamp": st.just("2026-11-22T22:00:00Z"),
})


def with_metadata(obj: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["metadata"] = {**out["metadata"], **extra}
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(obj=st.sampled_from(OBJECTS) | routes(), before=METADATA, after=METADATA, state=st.sampled_from(STATES))
def test_an_update_that_changes_only_metadata_is_allowed(
    obj: dict[str, Any], before: dict[str, Any], after: dict[str, Any], state: ClusterState
) -> None:
    """For any object, any policies in the suite and any view: an UPDATE of metadata alone is allowed."""
    old, new = with_metadata(obj, before), with_metadata(obj, after)
    decision = decide(synthesize_request(new, operation="UPDATE", old=old), POLICIES, state)
    assert decision.allowed, (decision.message, new)
