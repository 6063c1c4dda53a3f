"""What the view keeps made (``ClusterState.derived``) answers exactly as the rules as written.

With ``state.compiled = False`` nothing made from the view is kept: every rule computes
what it needs for each decision. That is the reference. The same requests are decided
against a view that keeps its values (and keeps them across writes, forgetting one when
a kind it reads changes) and one that does not: the decisions must be equal, field by
field (allowed, reason, message, violations with their messages and fields, warnings,
patches). Two sources of requests: every scenario folder of ``tests/scenarios``, and
generated clusters of Gateways, ListenerSets, routes with and without hostnames,
ReferenceGrants and Namespaces, changed between decisions.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from webhook.decision import Decision
from webhook.engine import decide
from webhook.offline import mark_added, store_mutated, synthesize_request, with_namespace
from webhook.policy.loader import load_documents, load_paths
from webhook.policy.model import PolicySet
from webhook.policytest import _user, find_tests, load_objects, load_test
from webhook.state.store import ClusterState

GROUP = "gateway.networking.k8s.io"
SCENARIOS = Path(__file__).parent / "scenarios"
CASES = find_tests(SCENARIOS)
AT = datetime(2026, 6, 1, tzinfo=UTC)  # exceptions expire by this clock, the same for both


def _decisions(request: Any, policies: PolicySet, state: ClusterState) -> tuple[Decision, Decision]:
    return (decide(request, policies, state, webhook="validate", at=AT),
            decide(request, policies, state, webhook="mutate", at=AT))


def assert_same(compiled: ClusterState, reference: ClusterState, policies: PolicySet, request: Any, what: str) -> None:
    """The compiled view decides ``request`` as the reference does, asked twice (the second
    time from what the first kept)."""
    want = _decisions(request, policies, reference)
    for attempt in ("first", "again"):
        got = _decisions(request, policies, compiled)
        for webhook, g, w in zip(("validate", "mutate"), got, want, strict=True):
            assert (g.allowed, g.reason, g.message, g.warnings, g.patch) == \
                (w.allowed, w.reason, w.message, w.warnings, w.patch), f"{what} ({webhook}, {attempt})"
            assert g == w, f"{what} ({webhook}, {attempt})"


def _views(objects: list[dict[str, Any]]) -> tuple[ClusterState, ClusterState]:
    compiled, reference = ClusterState.from_objects(objects), ClusterState.from_objects(objects)
    reference.compiled = False
    assert compiled.compiled
    return compiled, reference


# ----------------------------------------------------------------------------- the scenarios
@pytest.mark.parametrize("folder", CASES, ids=[c.name for c in CASES])
def test_every_scenario_is_decided_alike_with_and_without_compiled_values(folder: Path) -> None:
    """Each object and request of a scenario folder gets the same decisions from a view
    that keeps derived values as from one that keeps none."""
    case = load_test(folder)
    policies = load_paths(case.policies)
    resources = load_objects(case.resources)
    views = _views(load_objects(case.cluster) + resources)
    for state in views:
        mark_added(state, resources)
        store_mutated(resources, policies, state)
    compiled, reference = views
    asked = 0
    for obj in resources:
        assert_same(compiled, reference, policies, synthesize_request(obj), f"{case.name}: CREATE {obj['kind']}")
        asked += 1
    for req in case.requests:
        obj, old = req.get("object"), req.get("oldObject")
        request = synthesize_request(
            with_namespace(obj) if obj is not None else None, operation=req.get("operation", "CREATE"),
            old=with_namespace(old) if old is not None else None, user=_user(req.get("user")))
        assert_same(compiled, reference, policies, request, f"{case.name}: {request.operation} {request.kind.kind}")
        asked += 1
    assert asked, "a scenario must ask something"


# ----------------------------------------------------------------------------- generated clusters
POLICIES = load_documents([("generated.yaml", """
apiVersion: routewarden.dev/v1alpha1
kind: TenancyPolicy
metadata: {name: shared}
spec:
  match: {gateways: [{namespace: infra, name: shared}]}
  attachment:
    allowedNamespaces: {selector: {matchExpressions: [{key: team, operator: Exists}]}}
  hostnames:
    required: true
    unique: path
    allowed:
      - namespaces: {selector: {matchExpressions: [{key: team, operator: Exists}]}}
        patterns: ["*.{namespace}.example.com", "{labels.team}.example.com", "{annotations.dns}"]
      - namespaces: {names: [infra]}
        patterns: ["*.example.com"]
  references: {requireReferenceGrant: true}
  gatewayGuardrails:
    listenerDomains: [example.com]
    requireCertificateRefs: true
  blastRadius: {mode: enforce}
---
apiVersion: routewarden.dev/v1alpha1
kind: TenancyPolicy
metadata: {name: edge}
spec:
  match: {namespaces: {selector: {matchLabels: {tier: edge}}}}
  hostnames: {unique: host}
---
apiVersion: routewarden.dev/v1alpha1
kind: TenancyPolicy
metadata: {name: everywhere}
spec:
  mode: warn
  attachment: {mirrorListeners: true, partialAttachment: deny}
  references: {requireReferenceGrant: true}
---
apiVersion: routewarden.dev/v1alpha1
kind: ServicePolicy
metadata: {name: lb}
spec:
  match: {gatewayClassNames: [cilium]}
  service:
    annotations: {service.beta.kubernetes.io/aws-load-balancer-scheme: internet-facing}
    externalDNS: {prefix: external-dns.alpha.kubernetes.io/, sources: [listeners, routes]}
""")])

TEAMS = ("t0", "t1", "t2", "t3")
HOSTS = ("a.t0.example.com", "a.t1.example.com", "t2.example.com", "*.t1.example.com", "shop.example.com",
         "*.example.com", "other.org")
LISTENER_HOSTS = (None, None, "*.example.com", "*.t0.example.com", "a.t1.example.com", "shop.example.com")
PATHS = ("/", "/api", "/api/v1", "/web")


class Cluster:
    """A random cluster, and random changes and requests to it (all from one seed)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.serial = 0
        for obj in [self.namespace("infra", edge=True), *(self.namespace(t) for t in TEAMS),
                    self.gateway("infra", "shared"), self.gateway(self.rng.choice(("infra", "t0")), "edge")]:
            self.put(obj)
        for _ in range(self.rng.randint(0, 3)):
            self.put(self.listenerset())
        for _ in range(self.rng.randint(4, 12)):
            self.put(self.route())
        for _ in range(self.rng.randint(0, 3)):
            self.put(self.grant())

    def put(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        self.objects[(obj["kind"], meta.get("namespace", ""), meta["name"])] = obj

    def pick(self, *kinds: str) -> dict[str, Any] | None:
        keys = sorted(k for k in self.objects if k[0] in kinds)
        return self.objects[self.rng.choice(keys)] if keys else None

    def _meta(self, namespace: str, prefix: str) -> dict[str, Any]:
        self.serial += 1
        stamp = f"2026-01-{self.rng.randint(1, 28):02d}T00:00:00Z"
        return {"namespace": namespace, "name": f"{prefix}{self.rng.randint(0, 9)}", "creationTimestamp": stamp,
                "uid": f"u-{self.serial}"}

    # ------------------------------------------------------------------ objects
    def namespace(self, name: str, *, edge: bool = False) -> dict[str, Any]:
        labels = {"team": name} if name in TEAMS and self.rng.random() < 0.8 else {}
        if edge or self.rng.random() < 0.3:
            labels["tier"] = "edge"
        annotations = {"dns": f"{name}.example.com"} if self.rng.random() < 0.5 else {}
        return {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": name, "labels": labels, "annotations": annotations}}

    def _allowed(self) -> dict[str, Any]:
        return self.rng.choice(({"from": "Same"}, {"from": "All"},
                                {"from": "Selector", "selector": {"matchLabels": {"tier": "edge"}}},
                                {"from": "Selector", "selector": {"matchExpressions": [
                                    {"key": "tier", "operator": "DoesNotExist"}]}},
                                {"from": "Selector", "selector": {"matchExpressions": [
                                    {"key": "team", "operator": "In", "values": ["t0", "t1"]}]}}))

    def _listeners(self, count: int) -> list[dict[str, Any]]:
        out = []
        for i in range(count):
            protocol = self.rng.choice(("HTTP", "HTTPS", "TLS", "TCP"))
            listener: dict[str, Any] = {"name": f"l{i}", "port": self.rng.choice((80, 443, 8443)),
                                        "protocol": protocol, "allowedRoutes": {"namespaces": self._allowed()}}
            hostname = self.rng.choice(LISTENER_HOSTS)
            if hostname and protocol != "TCP":
                listener["hostname"] = hostname
            if protocol in ("HTTPS", "TLS"):
                listener["tls"] = {"mode": "Terminate" if protocol == "HTTPS" else "Passthrough",
                                   **({"certificateRefs": [{"name": "cert"}]} if protocol == "HTTPS" else {})}
            out.append(listener)
        return out

    def gateway(self, namespace: str, name: str) -> dict[str, Any]:
        spec: dict[str, Any] = {"gatewayClassName": "cilium", "listeners": self._listeners(self.rng.randint(1, 3))}
        if self.rng.random() < 0.7:
            spec["allowedListeners"] = {"namespaces": self._allowed()}
        meta = self._meta(namespace, name)
        meta["name"] = name
        return {"apiVersion": f"{GROUP}/v1", "kind": "Gateway", "metadata": meta, "spec": spec}

    def listenerset(self) -> dict[str, Any]:
        parent = self.pick("Gateway")  # none: the Gateway it names is not (or no longer) there
        ref = {"name": "shared" if parent is None else parent["metadata"]["name"]}
        if self.rng.random() < 0.8:
            ref["namespace"] = "infra" if parent is None else parent["metadata"]["namespace"]
        return {"apiVersion": f"{GROUP}/v1", "kind": "ListenerSet",
                "metadata": self._meta(self.rng.choice(("infra", *TEAMS)), "ls"),
                "spec": {"parentRef": ref, "listeners": self._listeners(self.rng.randint(1, 2))}}

    def route(self) -> dict[str, Any]:
        kind = self.rng.choice(("HTTPRoute", "HTTPRoute", "HTTPRoute", "GRPCRoute", "TLSRoute"))
        namespace = self.rng.choice(TEAMS)
        parents = []
        for _ in range(self.rng.choice((1, 1, 2))):
            parent = self.pick("Gateway", "ListenerSet") if self.rng.random() < 0.9 else None
            if parent is None:
                parents.append({"name": "missing", "namespace": "infra"})
                continue
            ref: dict[str, Any] = {"name": parent["metadata"]["name"], "namespace": parent["metadata"]["namespace"]}
            if parent["kind"] == "ListenerSet":
                ref["kind"] = "ListenerSet"
            if self.rng.random() < 0.3:
                ref["sectionName"] = self.rng.choice(("l0", "l1"))
            parents.append(ref)
        spec: dict[str, Any] = {"parentRefs": parents}
        if self.rng.random() < 0.75:
            spec["hostnames"] = self.rng.sample(HOSTS, self.rng.randint(1, 2))
        backend: dict[str, Any] = {"name": "svc", "port": 8080}
        if self.rng.random() < 0.3:
            backend["namespace"] = self.rng.choice(TEAMS)
        rule: dict[str, Any] = {"backendRefs": [backend]}
        if kind == "HTTPRoute" and self.rng.random() < 0.7:
            rule["matches"] = [{"path": {"type": self.rng.choice(("PathPrefix", "Exact")),
                                         "value": self.rng.choice(PATHS)}}]
        spec["rules"] = [rule]
        version = "v1alpha2" if kind == "TLSRoute" else "v1"
        return {"apiVersion": f"{GROUP}/{version}", "kind": kind, "metadata": self._meta(namespace, "r"), "spec": spec}

    def grant(self) -> dict[str, Any]:
        return {"apiVersion": f"{GROUP}/v1beta1", "kind": "ReferenceGrant",
                "metadata": self._meta(self.rng.choice(TEAMS), "g"),
                "spec": {"from": [{"group": GROUP, "kind": self.rng.choice(("HTTPRoute", "GRPCRoute")),
                                   "namespace": self.rng.choice(TEAMS)}],
                         "to": [{"group": "", "kind": "Service", **({"name": "svc"} if self.rng.random() < 0.5 else {})}]}}

    def service(self) -> dict[str, Any]:
        """A LoadBalancer Service as Envoy Gateway generates it for one of the Gateways."""
        owner = self.pick("Gateway")
        name, namespace = ("shared", "infra") if owner is None else (owner["metadata"]["name"],
                                                                     owner["metadata"]["namespace"])
        labels = {"app.kubernetes.io/managed-by": "envoy-gateway", "gateway.envoyproxy.io/owning-gateway-name": name,
                  "gateway.envoyproxy.io/owning-gateway-namespace": namespace}
        return {"apiVersion": "v1", "kind": "Service",
                "metadata": {"namespace": "envoy-gateway-system", "name": f"envoy-{namespace}-{name}", "labels": labels},
                "spec": {"type": "LoadBalancer", "selector": labels,
                         "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080}]}}

    def new(self, kind: str) -> dict[str, Any]:
        if kind == "Service":
            return self.service()
        if kind == "Namespace":
            return self.namespace(self.rng.choice(TEAMS))
        if kind == "Gateway":
            return self.gateway(self.rng.choice(("infra", "t0")), self.rng.choice(("shared", "edge")))
        return {"ListenerSet": self.listenerset, "ReferenceGrant": self.grant}.get(kind, self.route)()

    # ------------------------------------------------------------------ what happens next
    KINDS = ("Namespace", "Namespace", "Gateway", "ListenerSet", "HTTPRoute", "HTTPRoute", "ReferenceGrant")

    def steps(self, count: int) -> Iterator[tuple[str, Any]]:
        """("apply", obj), ("remove", key) or ("ask", request), ``count`` of them."""
        for _ in range(count):
            kind = self.rng.choice(self.KINDS)
            roll = self.rng.random()
            if roll < 0.3:
                obj = self.new(kind)
                self.put(obj)
                yield "apply", obj
            elif roll < 0.38:
                old = self.pick(kind, *(("GRPCRoute", "TLSRoute") if kind == "HTTPRoute" else ()))
                if old is not None and old["kind"] != "Namespace":
                    key = (old["kind"], old["metadata"].get("namespace", ""), old["metadata"]["name"])
                    del self.objects[key]
                    yield "remove", key
            elif roll < 0.75 or kind == "Namespace":
                yield "ask", synthesize_request(self.new("Service" if kind == "Namespace" else kind))
            else:
                old = self.pick(kind, *(("GRPCRoute", "TLSRoute") if kind == "HTTPRoute" else ()))
                if old is None:
                    continue
                new = self.new(old["kind"])
                new["metadata"] = {**old["metadata"]}
                if old["kind"] == "Gateway":
                    new["spec"]["gatewayClassName"] = old["spec"]["gatewayClassName"]
                operation = "DELETE" if old["kind"] in ("ReferenceGrant", "ListenerSet") and roll > 0.9 else "UPDATE"
                yield "ask", synthesize_request(None if operation == "DELETE" else new, operation=operation, old=old)


SEEDS = range(60)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_generated_cluster_changing_between_decisions_is_decided_alike(seed: int) -> None:
    """Random clusters, written to between decisions: every decision of the view that keeps
    what it made equals the reference's, so nothing kept outlives a change it depends on."""
    cluster = Cluster(seed)
    compiled, reference = _views(list(cluster.objects.values()))
    asked = 0
    for step, (what, arg) in enumerate(cluster.steps(40)):
        if what == "apply":
            for state in (compiled, reference):
                state.apply(arg["kind"], arg)
        elif what == "remove":
            for state in (compiled, reference):
                state.remove(*arg)
        else:
            asked += 1
            assert_same(compiled, reference, POLICIES, arg,
                        f"seed {seed}, step {step}: {arg.operation} {arg.kind.kind} {arg.namespace}/{arg.name}")
    assert asked


# ----------------------------------------------------------------------------- changes aimed at one kept value
def _ns(name: str, labels: dict[str, str], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": labels, "annotations": annotations or {}}}


def _route(namespace: str, name: str, hostname: str, stamp: str = "") -> dict[str, Any]:
    meta = {"namespace": namespace, "name": name, **({"creationTimestamp": stamp} if stamp else {})}
    return {"apiVersion": f"{GROUP}/v1", "kind": "HTTPRoute", "metadata": meta,
            "spec": {"parentRefs": [{"name": "shared", "namespace": "infra"}], "hostnames": [hostname],
                     "rules": [{"backendRefs": [{"name": "svc", "port": 80}]}]}}


EDGE_ONLY = {"apiVersion": f"{GROUP}/v1", "kind": "Gateway", "metadata": {"namespace": "infra", "name": "shared"},
             "spec": {"gatewayClassName": "cilium", "listeners": [
                 {"name": "l0", "port": 80, "protocol": "HTTP", "allowedRoutes": {"namespaces": {
                     "from": "Selector", "selector": {"matchLabels": {"tier": "edge"}}}}}]}}

# (what the cluster holds, then writes and requests in turn): each kept value read, then made stale by a write
AIMED = {
    # a stored route's claims read its namespace's labels (the listener admits tier=edge only)
    "a stored route's claims, its namespace relabelled": (
        [_ns("infra", {"tier": "edge"}), _ns("t0", {"team": "t0", "tier": "edge"}),
         _ns("t1", {"team": "t1", "tier": "edge"}), EDGE_ONLY,
         _route("t0", "first", "shop.example.com", "2026-01-01T00:00:00Z")],
        [("ask", _route("t1", "second", "shop.example.com")), ("apply", _ns("t0", {"team": "t0"})),
         ("ask", _route("t1", "second", "shop.example.com")), ("apply", _ns("t0", {"team": "t0", "tier": "edge"})),
         ("ask", _route("t1", "second", "shop.example.com"))]),
    # the allowed patterns of a namespace read its annotations ({annotations.dns})
    "a namespace's allowed patterns, its annotation changed": (
        [_ns("infra", {"tier": "edge"}), _ns("t0", {"team": "t0", "tier": "edge"}, {"dns": "a.example.com"}),
         EDGE_ONLY],
        [("ask", _route("t0", "r", "a.example.com")), ("apply", _ns("t0", {"team": "t0", "tier": "edge"},
                                                                    {"dns": "b.example.com"})),
         ("ask", _route("t0", "r", "a.example.com"))]),
}


@pytest.mark.parametrize("name", sorted(AIMED))
def test_a_write_forgets_the_kept_values_that_read_it(name: str) -> None:
    """Each kept value is asked for, then a write changes what it reads, then it is asked
    for again: the decisions follow the write (and differ, so the write mattered)."""
    objects, steps = AIMED[name]
    compiled, reference = _views(objects)
    answers = []
    for what, obj in steps:
        if what == "apply":
            for state in (compiled, reference):
                state.apply(obj["kind"], obj)
            continue
        request = synthesize_request(obj)
        assert_same(compiled, reference, POLICIES, request, f"{name}: after {len(answers)} answers")
        answers.append(decide(request, POLICIES, reference, at=AT))
    assert len({(a.allowed, a.message) for a in answers}) > 1, "the writes must change the answer"
