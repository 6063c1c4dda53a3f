"""What the cluster view keeps of routes, ReferenceGrants and Namespaces reads back the same.

The view keeps those kinds as typed records only (webhook/state/records.py), and gives
them back through ``get`` and ``objects`` (the audit, ``check --cluster``'s overlay, the
reconciler and a namespace-scoped relist read them): what it gives back must parse to
the very record it keeps, field paths included, so a finding on a stored object names
the same field as one on the object as written. Routes are drawn with every part the
parser reads (hostnames, parentRefs, backendRefs with mirror filters, external auth,
HTTP paths and gRPC methods of every shape) and parts it does not (headers, weights,
other filters).
"""

from __future__ import annotations

import gc
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from webhook import gatewayapi as gw
from webhook.state.records import Namespace
from webhook.state.store import ClusterState

WORDS = st.sampled_from(["a", "b", "svc", "web", "/", "*", "a/b", "x.y", "", "Exact", "PathPrefix"])
NAMES = st.sampled_from(["a", "b", "infra", "team-1"])
OPT = st.none() | WORDS


def _some(**fields: Any) -> st.SearchStrategy[dict[str, Any]]:
    """A dict with any subset of ``fields`` (each a strategy)."""
    return st.fixed_dictionaries({}, optional=fields)


BACKEND = _some(group=st.sampled_from(["", "gateway.networking.k8s.io", "example.com"]),
                kind=st.sampled_from(["Service", "HTTPRoute", ""]), namespace=NAMES, port=st.integers(1, 9),
                weight=st.integers(0, 9)).flatmap(
    lambda d: st.just({**d, "name": "svc"}))
FILTER = st.one_of(
    st.just({"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x", "value": "y"}]}}),
    BACKEND.map(lambda b: {"type": "RequestMirror", "requestMirror": {"backendRef": b, "percent": 5}}),
    BACKEND.map(lambda b: {"type": "ExternalAuth", "externalAuth": {"backendRef": b, "protocol": "HTTP"}}),
)
BACKEND_WITH_FILTERS = st.tuples(BACKEND, st.none() | st.lists(FILTER, max_size=3)).map(
    lambda pair: pair[0] if pair[1] is None else {**pair[0], "filters": pair[1]})
HTTP_MATCH = _some(path=_some(type=st.sampled_from(["Exact", "PathPrefix", "RegularExpression"]), value=OPT),
                   headers=st.just([{"name": "x", "value": "1"}]))
GRPC_MATCH = _some(method=_some(type=st.sampled_from(["Exact", "RegularExpression"]), service=OPT, method=OPT),
                   headers=st.just([{"name": "x", "value": "1"}]))


@st.composite
def routes(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(sorted(gw.ROUTE_KINDS)))
    match = GRPC_MATCH if kind == "GRPCRoute" else HTTP_MATCH
    rule = _some(matches=st.lists(match, max_size=3), backendRefs=st.lists(BACKEND_WITH_FILTERS, max_size=3),
                 filters=st.lists(FILTER, max_size=2), timeouts=st.just({"request": "1s"}))
    spec = draw(_some(
        hostnames=st.lists(st.sampled_from(["A.example.com", "*.example.com", "b.example.com."]), max_size=3),
        parentRefs=st.lists(_some(group=st.sampled_from(["", gw.GROUP]), kind=st.sampled_from(["Gateway", "Service"]),
                                  namespace=NAMES, sectionName=OPT, port=st.integers(1, 9)).map(
            lambda d: {**d, "name": "gw"}), max_size=3),
        rules=st.lists(rule, max_size=4)))
    metadata = draw(_some(uid=st.just("u-1"), creationTimestamp=st.just("2026-01-01T00:00:00Z"),
                          labels=st.dictionaries(st.sampled_from(["app", "team"]), st.sampled_from(["x", ""]), max_size=2),
                          annotations=st.dictionaries(st.just("note"), st.just("n"), max_size=1),
                          resourceVersion=st.just("7"), managedFields=st.just([{"manager": "kubectl"}])))
    version = draw(st.sampled_from(["v1", "v1beta1", "v1alpha2"]))
    return {"apiVersion": f"{gw.GROUP}/{version}", "kind": kind, "metadata": {**metadata, "namespace": "a", "name": "r"},
            "spec": spec, "status": {"parents": []}}


@settings(max_examples=400, deadline=None)
@given(routes())
def test_a_stored_route_reads_back_as_the_same_route(obj: dict[str, Any]) -> None:
    """``Route.from_object(route.to_object())`` is the route, field paths and all, and so is
    what the view gives back."""
    try:
        route = gw.Route.from_object(obj)
    except gw.MalformedObject:
        return  # a gRPC method without service or name with type Exact, and so on: never stored typed
    again = gw.Route.from_object(route.to_object())
    assert again == route
    assert [r.field for r in again.backend_refs] == [r.field for r in route.backend_refs]
    assert again.api_version == route.api_version
    state = ClusterState.from_objects([obj])
    stored = state.get(obj["kind"], "a", "r")
    assert stored is not None and gw.Route.from_object(stored) == route
    assert state.route(obj["kind"], "a", "r") == route
    assert stored["apiVersion"] == obj["apiVersion"] and list(state.objects(obj["kind"])) == [stored]
    # which version of the object the view holds (the informer's convergence is judged by it)
    assert stored["metadata"].get("resourceVersion") == obj["metadata"].get("resourceVersion")


GRANT_ENTRY = st.tuples(st.sampled_from(["", gw.GROUP]), st.sampled_from(["Service", "HTTPRoute", ""]), OPT)


@settings(max_examples=100, deadline=None)
@given(st.lists(GRANT_ENTRY, max_size=3), st.lists(GRANT_ENTRY, max_size=3))
def test_a_stored_reference_grant_reads_back_as_the_same_grant(froms: list[Any], tos: list[Any]) -> None:
    """Grants keep their from and to entries, names and all."""
    obj = {"apiVersion": f"{gw.GROUP}/v1beta1", "kind": "ReferenceGrant", "metadata": {"namespace": "b", "name": "g"},
           "spec": {"from": [{"group": g, "kind": k, "namespace": n or ""} for g, k, n in froms],
                    "to": [{"group": g, "kind": k, **({"name": n} if n is not None else {})} for g, k, n in tos]}}
    grant = gw.ReferenceGrant.from_object(obj)
    assert gw.ReferenceGrant.from_object(grant.to_object()) == grant
    state = ClusterState.from_objects([obj])
    assert state.reference_grants("b") == (grant,)
    assert gw.ReferenceGrant.from_object(state.get("ReferenceGrant", "b", "g")) == grant


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(["team", "tier", gw.NAME_LABEL]), st.sampled_from(["red", "a", "spoofed"]),
                       max_size=3),
       st.dictionaries(st.sampled_from(["owner", "domain"]), st.sampled_from(["x", "example.com"]), max_size=2))
def test_a_stored_namespace_gives_back_its_labels_and_annotations(labels: dict[str, str],
                                                                  annotations: dict[str, str]) -> None:
    """The labels the object gave (a spoofed name label included) come back as given; the
    labels rules read always carry the name label with the name."""
    obj = {"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": "team-1", "labels": labels, "annotations": annotations, "resourceVersion": "12"}}
    state = ClusterState.from_objects([obj])
    stored = state.get("Namespace", "", "team-1")
    assert stored is not None and stored["metadata"]["resourceVersion"] == "12"
    assert stored["metadata"].get("labels", {}) == labels
    assert stored["metadata"].get("annotations", {}) == annotations
    assert state.namespace_labels("team-1") == {**labels, gw.NAME_LABEL: "team-1"}
    assert Namespace.from_object(stored) == Namespace.from_object(obj)


def test_a_namespace_whose_labels_are_not_an_object_is_kept_unread() -> None:
    """A Namespace no apiserver would serve is kept as it came, and its labels are unknown."""
    obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "odd", "labels": ["team"]}}
    state = ClusterState.from_objects([obj])
    assert state.get("Namespace", "", "odd") == obj and state.has_namespace("odd")
    assert state.namespace_labels("odd") is None
    assert state.rejected == {("Namespace", "", "odd"): "metadata.labels: expected an object, got list"}


def test_equal_references_of_many_routes_are_stored_once() -> None:
    """Routes naming the same parent, backend and path share one instance of each."""
    objs = [{"apiVersion": f"{gw.GROUP}/v1", "kind": "HTTPRoute", "metadata": {"namespace": "a", "name": f"r{i}"},
             "spec": {"parentRefs": [{"name": "gw", "namespace": "infra"}],
                      "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
                                 "backendRefs": [{"name": "svc", "port": 80}]}]}} for i in range(3)]
    state = ClusterState.from_objects(orjson.loads(orjson.dumps(objs)))
    first, *others = (state.route("HTTPRoute", "a", f"r{i}") for i in range(3))
    for route in others:
        assert route.parent_refs is first.parent_refs and route.paths is first.paths
        assert route.backend_refs[0] is first.backend_refs[0]
        assert route.namespace is first.namespace


def test_the_view_keeps_no_string_of_the_documents_it_was_loaded_from() -> None:
    """Once the documents are gone, nothing of them stays alive through the view (a kept
    string would pin the allocator's arena it sits in; see records.own)."""
    objs = orjson.loads(orjson.dumps([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a", "labels": {"team": "red"},
                                                                "annotations": {"owner": "x"}}},
        {"apiVersion": f"{gw.GROUP}/v1", "kind": "HTTPRoute",
         "metadata": {"namespace": "a", "name": "r", "uid": "u-1", "creationTimestamp": "2026-01-01T00:00:00Z",
                      "labels": {"app": "web"}},
         "spec": {"hostnames": ["web.example.com"], "parentRefs": [{"name": "gw", "namespace": "infra"}],
                  "rules": [{"backendRefs": [{"name": "svc", "namespace": "b", "port": 80}]}]}},
        {"apiVersion": f"{gw.GROUP}/v1beta1", "kind": "ReferenceGrant", "metadata": {"namespace": "b", "name": "g"},
         "spec": {"from": [{"group": gw.GROUP, "kind": "HTTPRoute", "namespace": "a"}],
                  "to": [{"group": "", "kind": "Service", "name": "svc"}]}},
    ]))
    # The empty string is one object for the whole interpreter (it pins no document's memory).
    document_strings = {id(s) for s in _strings(objs) if s}
    state = ClusterState.from_objects(objs)
    kept = {id(s) for s in _strings([state.route("HTTPRoute", "a", "r"), state.reference_grants("b"),
                                      state.namespace("a"), list(state._objects.values())])}
    gc.collect()
    assert not kept & document_strings, [s for s in _strings(objs) if id(s) in kept]


def _strings(node: Any, seen: set[int] | None = None) -> list[str]:
    """Every string reachable from ``node`` through containers and slotted records."""
    seen = set() if seen is None else seen
    if id(node) in seen:
        return []
    seen.add(id(node))
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict) or hasattr(node, "items"):
        return [s for k, v in node.items() for s in _strings(k, seen) + _strings(v, seen)]
    if isinstance(node, (list, tuple, set, frozenset)):
        return [s for item in node for s in _strings(item, seen)]
    slots = [n for cls in type(node).__mro__ for n in getattr(cls, "__slots__", ())]
    return [s for n in slots if hasattr(node, n) for s in _strings(getattr(node, n), seen)]
