"""ClusterState keeps its indexes equal to a brute-force recomputation from the objects it holds.

The store is written by apply/remove (watch events) and replace (relists); the rules read
only its indexes. A stateful property test drives random writes and, after each one,
recomputes every index from scratch with the gatewayapi views and compares.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from webhook import gatewayapi as gw
from webhook.state.store import ClusterState

NAMESPACES = ("a", "b", "infra")
NAMES = ("x", "y")
HOSTS = ("foo.example.com", "bar.foo.example.com", "*.example.com", "*.foo.example.com", "example.com", "other.org")
DOMAINS = ("com", "example.com", "foo.example.com", "org", "other.org", "bar.foo.example.com")
ROUTE_KINDS = ("HTTPRoute", "TCPRoute")


def namespace(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def http_route(
    ns: str, name: str, *, kind: str = "HTTPRoute", hostnames: list[str] = (), parents: list[dict[str, Any]] = (),
    backends: list[dict[str, Any]] = (), mirror: dict[str, Any] | None = None,
) -> dict[str, Any]:
    rule: dict[str, Any] = {"backendRefs": list(backends)}
    if mirror:
        rule["filters"] = [{"type": "RequestMirror", "requestMirror": {"backendRef": mirror}}]
    spec: dict[str, Any] = {"parentRefs": list(parents), "rules": [rule]}
    if kind == "HTTPRoute":
        spec["hostnames"] = list(hostnames)
    return {
        "apiVersion": f"{gw.GROUP}/v1",
        "kind": kind,
        "metadata": {"namespace": ns, "name": name, "managedFields": [{"manager": "kubectl"}]},
        "spec": spec,
        "status": {"parents": []},
    }


def gateway(ns: str, name: str, hostname: str | None = None) -> dict[str, Any]:
    lst: dict[str, Any] = {"name": "http", "protocol": "HTTP", "port": 80}
    if hostname:
        lst["hostname"] = hostname
    return {"apiVersion": f"{gw.GROUP}/v1", "kind": "Gateway", "metadata": {"namespace": ns, "name": name},
            "spec": {"gatewayClassName": "c", "listeners": [lst]}}


def grant(ns: str, name: str, from_ns: str) -> dict[str, Any]:
    return {"apiVersion": f"{gw.GROUP}/v1beta1", "kind": "ReferenceGrant", "metadata": {"namespace": ns, "name": name},
            "spec": {"from": [{"group": gw.GROUP, "kind": "HTTPRoute", "namespace": from_ns}], "to": [{"group": "", "kind": "Service"}]}}


def listenerset(ns: str, name: str, parent: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{gw.GROUP}/v1", "kind": "ListenerSet", "metadata": {"namespace": ns, "name": name},
            "spec": {"parentRef": parent, "listeners": [{"name": "l", "protocol": "HTTP", "port": 8080}]}}


# --------------------------------------------------------------------------- strategies
ns_st = st.sampled_from(NAMESPACES)
name_st = st.sampled_from(NAMES)
parent_st = st.builds(
    lambda name, ns, kind, omit_ns: {"name": name, "kind": kind, **({} if omit_ns else {"namespace": ns})},
    name_st, ns_st, st.sampled_from(["Gateway", "ListenerSet"]), st.booleans(),
)
backend_st = st.builds(
    lambda name, ns, omit_ns: {"name": name, "port": 80, **({} if omit_ns else {"namespace": ns})},
    name_st, ns_st, st.booleans(),
)


@st.composite
def route_st(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    kind = draw(st.sampled_from(ROUTE_KINDS))
    obj = http_route(
        draw(ns_st), draw(name_st), kind=kind,
        hostnames=draw(st.lists(st.sampled_from(HOSTS + ("FOO.example.com",)), max_size=3)),
        parents=draw(st.lists(parent_st, max_size=2)),
        backends=draw(st.lists(backend_st, max_size=2)),
        mirror=draw(st.none() | backend_st),
    )
    return kind, obj


other_st = st.one_of(
    st.builds(lambda ns, n, h: ("Gateway", gateway(ns, n, h)), ns_st, name_st, st.none() | st.sampled_from(HOSTS)),
    st.builds(lambda ns, n, f: ("ReferenceGrant", grant(ns, n, f)), ns_st, name_st, ns_st),
    st.builds(lambda n, team: ("Namespace", namespace(n, {"team": team})), ns_st, st.sampled_from(["red", "blue"])),
    st.builds(lambda ns, n, p: ("ListenerSet", listenerset(ns, n, p)), ns_st, name_st,
              st.builds(lambda n, ns, omit: {"name": n, **({} if omit else {"namespace": ns})}, name_st, ns_st, st.booleans())),
)
object_st = st.one_of(route_st(), other_st)
KINDS = ROUTE_KINDS + ("Gateway", "ReferenceGrant", "Namespace", "ListenerSet")


def key_of(obj: dict[str, Any]) -> tuple[str, str]:
    return (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])


# --------------------------------------------------------------------------- brute force
class Expected:
    """Every index, recomputed from a plain dict of the objects the store should hold."""

    def __init__(self, model: dict[str, dict[tuple[str, str], dict[str, Any]]]) -> None:
        self.routes = [gw.Route.from_object(o, kind=k) for k in ROUTE_KINDS for o in model.get(k, {}).values()]
        self.model = model

    @staticmethod
    def keys(routes: Any) -> set[tuple[str, str, str]]:
        return {r.key for r in routes}

    def with_hostname(self, h: str) -> set[tuple[str, str, str]]:
        return self.keys(r for r in self.routes if h in r.hostnames)

    def under_domain(self, d: str) -> set[tuple[str, str, str]]:
        # "What ``*.domain`` would cover", by the spec's own matching rule.
        return self.keys(r for r in self.routes if any(gw.hostname_matches("*." + d, h) for h in r.hostnames))

    def attached_to(self, ns: str, name: str) -> set[tuple[str, str, str]]:
        return self.keys(r for r in self.routes if any(p.is_gateway and p.gateway_key == (ns, name) for p in r.parent_refs))

    def attached_to_set(self, ns: str, name: str) -> set[tuple[str, str, str]]:
        return self.keys(r for r in self.routes if any(p.is_listenerset and p.gateway_key == (ns, name) for p in r.parent_refs))

    def referencing(self, ns: str) -> set[tuple[str, str, str]]:
        return self.keys(r for r in self.routes if any(b.namespace == ns != r.namespace for b in r.backend_refs))

    def grants(self, ns: str) -> set[str]:
        return {n for (gns, n) in self.model.get("ReferenceGrant", {}) if gns == ns}

    def labels(self, ns: str) -> dict[str, str] | None:
        obj = self.model.get("Namespace", {}).get(("", ns))
        if obj is None:
            return None
        return {**obj["metadata"]["labels"], "kubernetes.io/metadata.name": ns}

    def listenersets_of(self, ns: str, name: str) -> set[tuple[str, str]]:
        return {k for k, o in self.model.get("ListenerSet", {}).items() if gw.listenerset_parent(o) == (ns, name)}


def assert_kept(kind: str, stored: dict[str, Any], obj: dict[str, Any]) -> None:
    """The view gives back what the rules read of ``obj``: the whole object for the kinds it
    keeps whole, and for those it keeps typed (routes, grants, namespaces), an object that
    reads the same."""
    if kind in ROUTE_KINDS:
        assert gw.Route.from_object(stored, kind=kind) == gw.Route.from_object(obj, kind=kind)
    elif kind == "ReferenceGrant":
        assert gw.ReferenceGrant.from_object(stored) == gw.ReferenceGrant.from_object(obj)
    elif kind == "Namespace":
        assert stored["metadata"].get("labels", {}) == obj["metadata"].get("labels", {})
        assert stored["metadata"].get("annotations", {}) == obj["metadata"].get("annotations", {})
    else:
        assert stored["spec" if "spec" in obj else "metadata"] == obj["spec" if "spec" in obj else "metadata"]
    assert stored["metadata"]["name"] == obj["metadata"]["name"]
    assert stored.get("apiVersion") == obj.get("apiVersion", stored.get("apiVersion"))


def assert_indexes_match(state: ClusterState, model: dict[str, dict[tuple[str, str], dict[str, Any]]]) -> None:
    exp = Expected(model)
    for kind in KINDS:
        assert state.count(kind) == len(model.get(kind, {})), kind
        for key, obj in model.get(kind, {}).items():
            stored = state.get(kind, *key)
            assert stored is not None and "status" not in stored and "managedFields" not in stored["metadata"]
            assert_kept(kind, stored, obj)
    for h in HOSTS + tuple("*." + d for d in DOMAINS):
        assert {r.key for r in state.routes_with_hostname(h)} == exp.with_hostname(h), h
    for d in DOMAINS:
        assert {r.key for r in state.routes_under_domain(d)} == exp.under_domain(d), d
    for ns in NAMESPACES:
        assert {r.key for r in state.routes_referencing_namespace(ns)} == exp.referencing(ns), ns
        assert {g.meta.name for g in state.reference_grants(ns)} == exp.grants(ns), ns
        assert state.namespace_labels(ns) == exp.labels(ns), ns
        assert state.has_namespace(ns) is (exp.labels(ns) is not None)
        for name in NAMES:
            assert {r.key for r in state.routes_attached_to(ns, name)} == exp.attached_to(ns, name), (ns, name)
            assert {key_of(o) for o in state.listenersets_of(ns, name)} == exp.listenersets_of(ns, name), (ns, name)
            assert {s.key for s in state.listenersets_for(ns, name)} == exp.listenersets_of(ns, name), (ns, name)
            assert {r.key for r in state.routes_attached_to_listenerset(ns, name)} == exp.attached_to_set(ns, name)
            assert (state.listenerset(ns, name) is None) is ((ns, name) not in model.get("ListenerSet", {}))
            raw = model.get("Gateway", {}).get((ns, name))
            view = state.gateway(ns, name)
            assert (view is None) is (raw is None)
            if raw is not None:
                assert view is not None and view.listeners[0].hostname == raw["spec"]["listeners"][0].get("hostname")
    assert {r.key for r in state.routes()} == {r.key for r in exp.routes}


class StoreMachine(RuleBasedStateMachine):
    """Random apply/remove/replace sequences keep every index exact."""

    def __init__(self) -> None:
        super().__init__()
        self.state = ClusterState()
        self.model: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}

    @rule(item=object_st)
    def apply(self, item: tuple[str, dict[str, Any]]) -> None:
        kind, obj = item
        self.state.apply(kind, obj)
        self.model.setdefault(kind, {})[key_of(obj)] = obj

    @rule(kind=st.sampled_from(KINDS), ns=ns_st, name=name_st)
    def remove(self, kind: str, ns: str, name: str) -> None:
        key = ("", ns) if kind == "Namespace" else (ns, name)  # namespaces are cluster-scoped
        self.state.remove(kind, *key)
        self.model.get(kind, {}).pop(key, None)

    @rule(kind=st.sampled_from(KINDS), items=st.lists(object_st, max_size=5))
    def replace(self, kind: str, items: list[tuple[str, dict[str, Any]]]) -> None:
        objs = [o for k, o in items if k == kind]
        self.state.replace(kind, objs, resource_version="7")
        # The last of two objects with one key wins, as it would in a list response read in order.
        self.model[kind] = {key_of(o): o for o in objs}
        assert self.state.resource_version(kind) == "7"

    @invariant()
    def indexes_match_a_recomputation(self) -> None:
        assert_indexes_match(self.state, self.model)


StoreMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
test_random_writes_keep_every_index_equal_to_a_recomputation = StoreMachine.TestCase


# --------------------------------------------------------------------------- named cases
def test_replacing_a_route_leaves_no_stale_hostname_parent_or_namespace_entries() -> None:
    """After an update, the old hostnames, parents and backend namespaces no longer find the route."""
    state = ClusterState()
    state.apply("HTTPRoute", http_route("a", "x", hostnames=["foo.example.com"], parents=[{"name": "gw", "namespace": "infra"}],
                                        backends=[{"name": "s", "namespace": "b"}]))
    state.apply("HTTPRoute", http_route("a", "x", hostnames=["other.org"], parents=[{"name": "gw2"}]))
    assert state.routes_with_hostname("foo.example.com") == ()
    assert state.routes_under_domain("example.com") == ()
    assert state.routes_attached_to("infra", "gw") == ()
    assert state.routes_referencing_namespace("b") == ()
    assert [r.key for r in state.routes_attached_to("a", "gw2")] == [("HTTPRoute", "a", "x")]
    assert [r.key for r in state.routes_under_domain("org")] == [("HTTPRoute", "a", "x")]


def test_replace_drops_objects_missing_from_the_relist() -> None:
    """A relist is the truth: objects it does not contain are gone, with their index entries."""
    state = ClusterState()
    state.apply("HTTPRoute", http_route("a", "x", hostnames=["foo.example.com"]))
    state.apply("HTTPRoute", http_route("a", "y", hostnames=["foo.example.com"]))
    state.replace("HTTPRoute", [http_route("a", "y", hostnames=["bar.foo.example.com"])], "42")
    assert state.get("HTTPRoute", "a", "x") is None
    assert state.routes_with_hostname("foo.example.com") == ()
    assert [r.name for r in state.routes_under_domain("foo.example.com")] == ["y"]
    assert state.resource_version("HTTPRoute") == "42"


def test_a_relist_with_one_key_twice_keeps_only_the_last_version_indexed() -> None:
    """Two list items with one key must not leave the first one's index entries behind."""
    state = ClusterState()
    state.replace("HTTPRoute", [http_route("a", "x", hostnames=["old.example.com"]), http_route("a", "x", hostnames=["new.example.com"])])
    assert state.routes_with_hostname("old.example.com") == ()
    assert [r.name for r in state.routes_with_hostname("new.example.com")] == ["x"]


def test_a_malformed_object_in_a_relist_does_not_drop_the_objects_after_it() -> None:
    """A Gateway our parser refuses (a selector Kubernetes would refuse too) must not lose the rest of the list."""
    bad = gateway("infra", "bad")
    bad["spec"]["listeners"][0]["allowedRoutes"] = {
        "namespaces": {"from": "Selector", "selector": {"matchExpressions": [{"key": "team", "operator": "In", "values": []}]}}}
    state = ClusterState()
    state.replace("Gateway", [gateway("infra", "x"), bad, gateway("infra", "y")])
    assert state.gateway("infra", "x") is not None and state.gateway("infra", "y") is not None
    assert state.gateway("infra", "bad") is None
    assert state.get("Gateway", "infra", "bad") is not None
    assert state.count("Gateway") == 3


def test_a_malformed_update_is_kept_unindexed_and_its_old_version_leaves_the_indexes() -> None:
    """An update the view cannot read is recorded in ``rejected``; the stale version is not left indexed."""
    state = ClusterState()
    state.apply("HTTPRoute", http_route("a", "x", hostnames=["foo.example.com"]))
    bad = http_route("a", "x")
    bad["spec"]["hostnames"] = "foo.example.com"
    state.apply("HTTPRoute", bad)
    assert state.routes_with_hostname("foo.example.com") == ()
    assert state.route("HTTPRoute", "a", "x") is None
    assert state.get("HTTPRoute", "a", "x") is not None
    assert state.rejected == {("HTTPRoute", "a", "x"): "spec.hostnames: expected a list, got str"}
    state.apply("HTTPRoute", http_route("a", "x", hostnames=["foo.example.com"]))
    assert state.rejected == {} and [r.name for r in state.routes_with_hostname("foo.example.com")] == ["x"]
    state.remove("HTTPRoute", "a", "x")
    assert state.get("HTTPRoute", "a", "x") is None and state.routes_with_hostname("foo.example.com") == ()


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({}, {"kubernetes.io/metadata.name": "team-a"}),
        ({"team": "a"}, {"team": "a", "kubernetes.io/metadata.name": "team-a"}),
        # The apiserver sets this label to the namespace name whatever a manifest says.
        ({"kubernetes.io/metadata.name": "spoofed"}, {"kubernetes.io/metadata.name": "team-a"}),
    ],
)
def test_namespace_labels_always_include_the_metadata_name_label(labels: dict[str, str], expected: dict[str, str]) -> None:
    """kube-apiserver labels every namespace ``kubernetes.io/metadata.name=<name>``; offline manifests may omit it."""
    state = ClusterState()
    assert state.namespace_labels("team-a") is None
    state.apply("Namespace", namespace("team-a", labels))
    assert state.namespace_labels("team-a") == expected


def test_a_namespace_without_labels_still_has_the_name_label() -> None:
    """``metadata.labels`` may be absent altogether."""
    state = ClusterState()
    state.apply("Namespace", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bare"}})
    assert state.namespace_labels("bare") == {"kubernetes.io/metadata.name": "bare"}


def test_routes_attached_to_counts_only_gateway_parent_refs() -> None:
    """A parentRef to a ListenerSet (or Service) that shares the Gateway's name is not attachment to the Gateway."""
    state = ClusterState()
    state.apply("HTTPRoute", http_route("infra", "via-set", parents=[{"name": "x", "kind": "ListenerSet"}]))
    state.apply("HTTPRoute", http_route("infra", "direct", parents=[{"name": "x"}]))
    state.apply("HTTPRoute", http_route("infra", "svc", parents=[{"name": "x", "group": "", "kind": "Service"}]))
    assert [r.name for r in state.routes_attached_to("infra", "x")] == ["direct"]


def test_reference_grants_are_found_in_their_own_namespace_only() -> None:
    """reference_grants(ns) answers "which grants live where the referent lives"."""
    state = ClusterState()
    state.apply("ReferenceGrant", grant("b", "g1", "a"))
    state.apply("ReferenceGrant", grant("b", "g2", "infra"))
    state.apply("ReferenceGrant", grant("a", "g3", "b"))
    assert sorted(g.meta.name for g in state.reference_grants("b")) == ["g1", "g2"]
    state.remove("ReferenceGrant", "b", "g1")
    assert [g.meta.name for g in state.reference_grants("b")] == ["g2"]
    state.replace("ReferenceGrant", [])
    assert state.reference_grants("a") == () and state.reference_grants("b") == ()


def test_offline_views_load_every_known_kind_and_count_as_synced() -> None:
    """from_objects applies each object under its kind and marks every watched kind synced."""
    state = ClusterState.from_objects([gateway("infra", "x"), http_route("a", "r", parents=[{"name": "x", "namespace": "infra"}]),
                                       {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ignored"}}])
    assert state.synced and state.offline
    assert [r.name for r in state.routes_attached_to("infra", "x")] == ["r"]
    assert state.count("ConfigMap") == 0


def test_a_derived_value_is_kept_until_the_view_changes() -> None:
    """derived() computes once per key, and again after any write (the generation moved)."""
    state = ClusterState()
    calls: list[int] = []

    def compute() -> int:
        calls.append(state.count("Gateway"))
        return calls[-1]

    assert state.derived("k", compute) == 0 and state.derived("k", compute) == 0 and calls == [0]
    state.apply("Gateway", gateway("infra", "g", None))
    assert state.derived("k", compute) == 1 and calls == [0, 1]


def test_a_derived_value_that_names_what_it_reads_outlives_writes_of_other_kinds() -> None:
    """With ``reads``, only a write of one of those kinds makes derived() compute again;
    with ``anchor``, so does asking for it with another object; with ``compiled`` off,
    every ask computes."""
    state = ClusterState()
    calls: list[str] = []

    def compute() -> str:
        calls.append("x")
        return f"value {len(calls)}"

    gateways = frozenset({"Gateway"})
    first = state.derived("k", compute, reads=gateways)
    state.apply("Namespace", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}})
    assert state.derived("k", compute, reads=gateways) == first and len(calls) == 1
    state.apply("Gateway", gateway("infra", "g", None))
    assert state.derived("k", compute, reads=gateways) == "value 2"
    state.remove("Gateway", "infra", "g")
    assert state.derived("k", compute, reads=gateways) == "value 3"
    one, other = object(), object()
    assert state.derived("a", compute, reads=gateways, anchor=one) == "value 4"
    assert state.derived("a", compute, reads=gateways, anchor=one) == "value 4"
    assert state.derived("a", compute, reads=gateways, anchor=other) == "value 5"
    state.compiled = False
    assert state.derived("k", compute, reads=gateways) == "value 6"
    assert state.derived("k", compute, reads=gateways) == "value 7"
