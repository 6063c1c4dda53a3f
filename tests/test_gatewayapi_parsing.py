"""Typed views parse every upstream example in every served version, and refuse bad types cleanly.

A malformed object (possible in offline manifests, or before schema validation) must raise
``MalformedObject`` naming the field, never a ``KeyError``/``AttributeError``/``TypeError``
that would turn an admission review into an HTTP 500.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webhook.gatewayapi import (
    GROUP,
    ROUTE_KINDS,
    Gateway,
    LabelSelector,
    MalformedObject,
    ReferenceGrant,
    Route,
    listenerset_listeners,
    listenerset_parent,
)

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the CRDs are 2.6 MB of YAML
GATEWAY_API = Path(__file__).resolve().parents[1] / ".." / "shared" / "gateway-api" / "v1.6.1"


def _documents(folder: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(folder.rglob("*.yaml")):
        for i, doc in enumerate(yaml.load_all(path.read_text(), Loader=_LOADER)):
            if isinstance(doc, dict):
                yield f"{path.relative_to(folder)}#{i}", doc


def _served_versions() -> dict[str, set[str]]:
    """Kind -> every version a v1.6.1 CRD (standard or experimental channel) serves."""
    out: dict[str, set[str]] = {}
    for _, crd in _documents(GATEWAY_API / "crds"):
        if crd.get("kind") == "CustomResourceDefinition" and crd["spec"]["group"] == GROUP:
            kind = crd["spec"]["names"]["kind"]
            out.setdefault(kind, set()).update(v["name"] for v in crd["spec"]["versions"] if v.get("served"))
    return out


SERVED = _served_versions()
EXAMPLES = [(name, doc) for name, doc in _documents(GATEWAY_API / "examples") if str(doc.get("apiVersion", "")).startswith(GROUP)]


def _as_version(doc: dict[str, Any], version: str) -> dict[str, Any]:
    return {**doc, "apiVersion": f"{GROUP}/{version}"}


def _route_cases() -> list[Any]:
    cases = []
    for name, doc in EXAMPLES:
        if doc["kind"] in ROUTE_KINDS:
            for version in sorted(SERVED[doc["kind"]]):
                cases.append(pytest.param(doc, version, id=f"{name}@{version}"))
    return cases


def test_the_examples_cover_every_route_kind_and_the_crds_serve_the_versions_we_watch() -> None:
    """Guards the tables below: every route kind has an example, and the versions match kinds.py."""
    from webhook.state.kinds import KINDS_BY_NAME

    assert {doc["kind"] for _, doc in EXAMPLES} >= set(ROUTE_KINDS)
    for kind in ROUTE_KINDS:
        assert set(KINDS_BY_NAME[kind].versions) == SERVED[kind], kind
    assert SERVED["TLSRoute"] == {"v1", "v1alpha2", "v1alpha3"} and SERVED["HTTPRoute"] == {"v1", "v1beta1"}


def _count_backend_refs(spec: dict[str, Any]) -> int:
    def in_filters(filters: list[dict[str, Any]] | None) -> int:
        return sum(1 for f in filters or () for k in ("requestMirror", "externalAuth") if (f.get(k) or {}).get("backendRef"))

    n = 0
    for rule in spec.get("rules") or ():
        n += in_filters(rule.get("filters"))
        for ref in rule.get("backendRefs") or ():
            n += 1 + in_filters(ref.get("filters"))
    return n


@pytest.mark.parametrize(("doc", "version"), _route_cases())
def test_every_route_example_parses_in_every_served_version(doc: dict[str, Any], version: str) -> None:
    """Routes parse alike in v1, v1beta1, v1alpha2 and v1alpha3: the fields we read have one shape."""
    route = Route.from_object(_as_version(doc, version), namespace="default")
    spec = doc["spec"]
    assert route.kind == doc["kind"]
    assert route.name == doc["metadata"]["name"]
    assert route.namespace == doc["metadata"].get("namespace", "default")
    assert route.hostnames == tuple(h.lower() for h in spec.get("hostnames") or ())
    assert [p.name for p in route.parent_refs] == [p["name"] for p in spec.get("parentRefs") or ()]
    assert all(p.namespace == p_raw.get("namespace", route.namespace) for p, p_raw in zip(route.parent_refs, spec.get("parentRefs") or ()))
    assert len(route.backend_refs) == _count_backend_refs(spec)


@pytest.mark.parametrize(
    ("name", "doc"), [pytest.param(n, d, id=n) for n, d in EXAMPLES if d["kind"] not in ROUTE_KINDS]
)
def test_every_other_example_parses_into_its_view(name: str, doc: dict[str, Any]) -> None:
    """Gateways, ReferenceGrants and ListenerSets from the examples parse in each served version."""
    for version in sorted(SERVED.get(doc["kind"], {"v1"})):
        obj = _as_version(doc, version)
        if doc["kind"] == "Gateway":
            gw = Gateway.from_object(obj, namespace="default")
            assert [x.name for x in gw.listeners] == [x["name"] for x in doc["spec"]["listeners"]]
        elif doc["kind"] == "ReferenceGrant":
            grant = ReferenceGrant.from_object(obj, namespace="default")
            assert len(grant.from_) == len(doc["spec"]["from"]) and len(grant.to) == len(doc["spec"]["to"])
        elif doc["kind"] == "ListenerSet":
            assert listenerset_parent(obj) == (doc["spec"]["parentRef"].get("namespace", doc["metadata"]["namespace"]), doc["spec"]["parentRef"]["name"])
            assert len(listenerset_listeners(obj)) == len(doc["spec"]["listeners"])


# --------------------------------------------------------------------------- malformed objects
def _route(spec: Any, metadata: Any = ...) -> dict[str, Any]:
    meta = {"name": "r", "namespace": "n"} if metadata is ... else metadata
    return {"apiVersion": f"{GROUP}/v1", "kind": "HTTPRoute", "metadata": meta, "spec": spec}


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        (_route("x"), "spec"),
        (_route({"hostnames": "a.example.com"}), "spec.hostnames"),
        (_route({"hostnames": ["a.example.com", 7]}), "spec.hostnames[1]"),
        (_route({"hostnames": [None]}), "spec.hostnames[0]"),
        (_route({"parentRefs": {"name": "gw"}}), "spec.parentRefs"),
        (_route({"parentRefs": ["gw"]}), "spec.parentRefs[0]"),
        (_route({"parentRefs": [{"name": ["gw"]}]}), "spec.parentRefs[0].name"),
        (_route({"parentRefs": [{"name": "gw", "port": "80"}]}), "spec.parentRefs[0].port"),
        (_route({"parentRefs": [{"name": "gw", "port": True}]}), "spec.parentRefs[0].port"),
        (_route({"parentRefs": [{"name": "gw", "sectionName": 1}]}), "spec.parentRefs[0].sectionName"),
        (_route({"parentRefs": [{"name": "gw", "namespace": {}}]}), "spec.parentRefs[0].namespace"),
        (_route({"parentRefs": [{"name": "gw", "group": 0}]}), "spec.parentRefs[0].group"),
        (_route({"rules": {}}), "spec.rules"),
        (_route({"rules": [[]]}), "spec.rules[0]"),
        (_route({"rules": [{"backendRefs": "svc"}]}), "spec.rules[0].backendRefs"),
        (_route({"rules": [{"backendRefs": [{"port": 80}]}]}), "spec.rules[0].backendRefs[0].name"),
        (_route({"rules": [{"backendRefs": [{"name": "a", "kind": 1}]}]}), "spec.rules[0].backendRefs[0].kind"),
        (_route({"rules": [{"backendRefs": [{"name": "a", "filters": {}}]}]}), "spec.rules[0].backendRefs[0].filters"),
        (_route({"rules": [{"filters": [{"requestMirror": []}]}]}), "spec.rules[0].filters[0].requestMirror"),
        (_route({"rules": [{"filters": [{"requestMirror": {"backendRef": "x"}}]}]}), "spec.rules[0].filters[0].requestMirror.backendRef"),
        (_route({}, metadata=[]), "metadata"),
        ({**_route({}), "kind": ["HTTPRoute"]}, "kind"),
        (_route({}, metadata={"name": 1}), "metadata.name"),
        (_route({}, metadata={"name": "r", "namespace": 1}), "metadata.namespace"),
        (_route({}, metadata={"name": "r", "labels": {"a": 1}}), "metadata.labels.a"),
        (_route({}, metadata={"name": "r", "annotations": "x"}), "metadata.annotations"),
    ],
)
def test_a_malformed_route_raises_malformed_object_with_the_field_path(obj: dict[str, Any], field: str) -> None:
    """Every wrong type is reported at its own field path."""
    with pytest.raises(MalformedObject) as info:
        Route.from_object(obj)
    assert info.value.field == field
    assert str(info.value).startswith(field + ": ")


def _gateway(spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/v1", "kind": "Gateway", "metadata": {"name": "g", "namespace": "n"}, "spec": spec}


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"listeners": {}}, "spec.listeners"),
        ({"listeners": [1]}, "spec.listeners[0]"),
        ({"listeners": [{"name": "a", "port": "80"}]}, "spec.listeners[0].port"),
        ({"listeners": [{"name": "a", "hostname": 1}]}, "spec.listeners[0].hostname"),
        ({"listeners": [{"name": "a", "allowedRoutes": []}]}, "spec.listeners[0].allowedRoutes"),
        ({"listeners": [{"name": "a", "allowedRoutes": {"namespaces": {"from": 1}}}]}, "spec.listeners[0].allowedRoutes.namespaces.from"),
        ({"listeners": [{"name": "a", "allowedRoutes": {"namespaces": {"from": "Selector", "selector": []}}}]},
         "spec.listeners[0].allowedRoutes.namespaces.selector"),
        ({"listeners": [{"name": "a", "allowedRoutes": {"kinds": [{"kind": 1}]}}]}, "spec.listeners[0].allowedRoutes.kinds[0].kind"),
        ({"listeners": [{"name": "a", "tls": {"certificateRefs": [{}]}}]}, "spec.listeners[0].tls.certificateRefs[0].name"),
        ({"listeners": [{"name": "a", "tls": {"mode": 1}}]}, "spec.listeners[0].tls.mode"),
        ({"gatewayClassName": 1}, "spec.gatewayClassName"),
        ({"infrastructure": {"labels": {"a": 1}}}, "spec.infrastructure.labels.a"),
        ({"allowedListeners": {"namespaces": {"from": "Selector", "selector": {"matchLabels": "x"}}}},
         "spec.allowedListeners.namespaces.selector.matchLabels"),
        ({"tls": {"backend": {"clientCertificateRef": "x"}}}, "spec.tls.backend.clientCertificateRef"),
        ({"tls": {"frontend": {"default": []}}}, "spec.tls.frontend.default"),
        ({"tls": {"frontend": {"perPort": ["x"]}}}, "spec.tls.frontend.perPort[0]"),
        ({"tls": {"frontend": {"perPort": [{"port": 1, "tls": "x"}]}}}, "spec.tls.frontend.perPort[0].tls"),
        ({"tls": {"frontend": {"perPort": [{"port": 1, "tls": {"validation": {"caCertificateRefs": [{"name": 2}]}}}]}}},
         "spec.tls.frontend.perPort[0].tls.validation.caCertificateRefs[0].name"),
    ],
)
def test_a_malformed_gateway_raises_malformed_object_with_the_field_path(spec: Any, field: str) -> None:
    """Gateway fields are checked as strictly as route fields."""
    with pytest.raises(MalformedObject) as info:
        Gateway.from_object(_gateway(spec))
    assert info.value.field == field


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"from": {}}, "spec.from"),
        ({"from": ["x"]}, "spec.from[0]"),
        ({"from": [{"group": "", "kind": "HTTPRoute", "namespace": 1}]}, "spec.from[0].namespace"),
        ({"to": [{"kind": ["Service"]}]}, "spec.to[0].kind"),
        ({"to": [{"kind": "Service", "name": 5}]}, "spec.to[0].name"),
    ],
)
def test_a_malformed_reference_grant_raises_malformed_object_with_the_field_path(spec: Any, field: str) -> None:
    """ReferenceGrant from/to entries are checked field by field."""
    obj = {"apiVersion": f"{GROUP}/v1beta1", "kind": "ReferenceGrant", "metadata": {"name": "g", "namespace": "n"}, "spec": spec}
    with pytest.raises(MalformedObject) as info:
        ReferenceGrant.from_object(obj)
    assert info.value.field == field


# --------------------------------------------------------------------------- properties
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 70000) | st.floats(allow_nan=False) | st.sampled_from(["", "a", "HTTP", "*.a.b", "In", "x y"]),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(
        st.sampled_from(["name", "namespace", "kind", "group", "port", "sectionName", "hostname", "hostnames",
                         "parentRefs", "rules", "backendRefs", "filters", "requestMirror", "externalAuth", "backendRef",
                         "listeners", "allowedRoutes", "namespaces", "from", "selector", "kinds", "tls", "mode",
                         "certificateRefs", "matchLabels", "matchExpressions", "key", "operator", "values", "to",
                         "parentRef", "infrastructure", "labels", "allowedListeners", "frontend", "backend",
                         "default", "perPort", "validation", "caCertificateRefs", "clientCertificateRef", "protocol"]),
        children,
        max_size=4,
    ),
    max_leaves=12,
)

PARSERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "HTTPRoute": lambda o: Route.from_object(o),
    "TLSRoute": lambda o: Route.from_object(o),
    "Gateway": lambda o: Gateway.from_object(o),
    "ReferenceGrant": lambda o: ReferenceGrant.from_object(o),
    "ListenerSet": lambda o: (listenerset_listeners(o), listenerset_parent(o)),
}


def _parses_or_refuses(kind: str, obj: dict[str, Any]) -> None:
    try:
        view = PARSERS[kind](obj)
    except MalformedObject:
        return
    if isinstance(view, Route):  # a view that parsed holds the types its annotations promise
        assert isinstance(view.kind, str) and all(isinstance(h, str) for h in view.hostnames)
        assert all(isinstance(p.name, str) and isinstance(p.namespace, str) for p in view.parent_refs)
        assert all(isinstance(b.name, str) and isinstance(b.namespace, str) for b in view.backend_refs)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(sorted(PARSERS)), spec=JSON)
def test_any_json_spec_parses_or_raises_malformed_object(kind: str, spec: Any) -> None:
    """from_object either returns a view or raises MalformedObject, for any JSON value as spec."""
    _parses_or_refuses(kind, {"apiVersion": f"{GROUP}/v1", "kind": kind, "metadata": {"name": "x", "namespace": "n"}, "spec": spec})


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, path + (i,))


SEEDS = [doc for _, doc in EXAMPLES if doc["kind"] in PARSERS or doc["kind"] in ROUTE_KINDS]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_an_example_with_any_field_replaced_parses_or_raises_malformed_object(data: st.DataObject) -> None:
    """Replacing any one node of a real example with any JSON value never escapes as another exception."""
    doc = copy.deepcopy(data.draw(st.sampled_from(SEEDS)))
    kind = doc["kind"] if doc["kind"] in PARSERS else "HTTPRoute"
    path = data.draw(st.sampled_from([p for p in _paths(doc) if p]))
    node = doc
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = data.draw(JSON)
    _parses_or_refuses(kind, doc)


@settings(max_examples=200, deadline=None)
@given(selector=JSON)
def test_any_selector_value_parses_or_raises_malformed_object(selector: Any) -> None:
    """LabelSelector.from_dict never raises anything but MalformedObject."""
    try:
        LabelSelector.from_dict(selector).matches({"a": "b"})
    except MalformedObject:
        pass
