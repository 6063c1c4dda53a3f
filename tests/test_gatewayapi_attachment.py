"""Route attachment: parentRef defaults, listener selection, allowedRoutes, hostname intersection.

Each case predicts the ``Accepted`` condition reason a conformant controller writes into
``status.parents[]`` for one parentRef (``NoMatchingParent``, ``NotAllowedByListeners``,
``NoMatchingListenerHostname``, or None for accepted).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from webhook.gatewayapi import (
    GROUP,
    Gateway,
    Listener,
    MalformedObject,
    Route,
    evaluate_attachment,
    listener_admits_namespace,
    listeners_for_ref,
    listenerset_listeners,
    listenerset_parent,
    parse_listener,
    parse_parent_ref,
)

GW_NS = "infra"


def listener(name: str, protocol: str = "HTTP", port: int = 80, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "protocol": protocol, "port": port}
    if protocol in ("HTTPS", "TLS") and "tls" not in extra:
        out["tls"] = {"mode": "Passthrough"} if protocol == "TLS" else {"certificateRefs": [{"name": "cert"}]}
    out.update(extra)
    return out


def gateway(*listeners: dict[str, Any], namespace: str = GW_NS, name: str = "gw") -> Gateway:
    return Gateway.from_object(
        {
            "apiVersion": f"{GROUP}/v1",
            "kind": "Gateway",
            "metadata": {"namespace": namespace, "name": name},
            "spec": {"gatewayClassName": "example", "listeners": list(listeners)},
        }
    )


def route(
    kind: str = "HTTPRoute",
    *,
    namespace: str = GW_NS,
    parent: Mapping[str, Any] | None = None,
    hostnames: tuple[str, ...] = (),
) -> Route:
    spec: dict[str, Any] = {"parentRefs": [dict(parent or {"name": "gw", "namespace": GW_NS})]}
    if hostnames:
        spec["hostnames"] = list(hostnames)
    return Route.from_object(
        {"apiVersion": f"{GROUP}/v1", "kind": kind, "metadata": {"namespace": namespace, "name": "r"}, "spec": spec}
    )


def decide(
    gw: Gateway, rt: Route, *, labels: Mapping[str, str] | None = None
) -> str | None:
    return evaluate_attachment(
        rt, rt.parent_refs[0], gw.listeners, owner_namespace=gw.namespace, namespace_labels=labels
    ).reason


# --------------------------------------------------------------------------- parentRef defaults
def test_an_omitted_group_kind_and_namespace_default_to_a_gateway_in_the_route_namespace() -> None:
    """"When unspecified, "gateway.networking.k8s.io" is inferred"; namespace "refers to the local namespace of the Route"."""
    ref = parse_parent_ref({"name": "gw"}, route_namespace="team-a", where="spec.parentRefs[0]")
    assert (ref.group, ref.kind, ref.namespace, ref.name) == (GROUP, "Gateway", "team-a", "gw")
    assert ref.section_name is None and ref.port is None
    assert ref.is_gateway and not ref.is_listenerset
    assert ref.field == "spec.parentRefs[0]"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"name": "svc", "group": "", "kind": "Service"}, ("", "Service", "team-a")),
        ({"name": "ls", "kind": "ListenerSet"}, (GROUP, "ListenerSet", "team-a")),
        ({"name": "gw", "namespace": "infra"}, (GROUP, "Gateway", "infra")),
        ({"name": "gw", "group": "example.com", "kind": "Gateway"}, ("example.com", "Gateway", "team-a")),
    ],
)
def test_explicit_parent_ref_fields_are_kept_and_an_empty_group_is_the_core_group(
    value: dict[str, Any], expected: tuple[str, str, str]
) -> None:
    """"To set the core API group (such as for a "Service" kind referent), Group must be explicitly set to ""."\""""
    ref = parse_parent_ref(value, route_namespace="team-a", where="p")
    assert (ref.group, ref.kind, ref.namespace) == expected
    assert ref.is_gateway is (expected[:2] == (GROUP, "Gateway"))
    assert ref.is_listenerset is (expected[:2] == (GROUP, "ListenerSet"))


def test_an_empty_section_name_references_the_entire_gateway() -> None:
    """sectionName "When unspecified (empty string), this will reference the entire resource.\""""
    ref = parse_parent_ref({"name": "gw", "sectionName": ""}, route_namespace="a", where="p")
    assert ref.section_name is None


def test_a_parent_ref_without_a_name_is_malformed() -> None:
    """``name`` is the one required field of a ParentReference."""
    with pytest.raises(MalformedObject) as info:
        parse_parent_ref({"kind": "Gateway"}, route_namespace="a", where="spec.parentRefs[2]")
    assert info.value.field == "spec.parentRefs[2].name"


# --------------------------------------------------------------------------- listener selection
LISTENERS = gateway(
    listener("http", "HTTP", 80),
    listener("http-alt", "HTTP", 8080),
    listener("https", "HTTPS", 443),
    listener("https-b", "HTTPS", 443, hostname="b.example.com"),
).listeners


@pytest.mark.parametrize(
    ("section", "port", "selected"),
    [
        (None, None, ("http", "http-alt", "https", "https-b")),
        ("https", None, ("https",)),
        (None, 443, ("https", "https-b")),
        ("https-b", 443, ("https-b",)),
        # "When both Port and SectionName are specified, the name and port of the selected
        # listener must match both specified values."
        ("https", 80, ()),
        ("missing", None, ()),
        (None, 9999, ()),
    ],
)
def test_a_parent_ref_selects_listeners_by_section_name_and_port(
    section: str | None, port: int | None, selected: tuple[str, ...]
) -> None:
    """sectionName names a listener, port selects "all listeners listening on the specified port"."""
    value: dict[str, Any] = {"name": "gw"}
    if section is not None:
        value["sectionName"] = section
    if port is not None:
        value["port"] = port
    ref = parse_parent_ref(value, route_namespace=GW_NS, where="p")
    assert tuple(x.name for x in listeners_for_ref(LISTENERS, ref)) == selected


@pytest.mark.parametrize(
    "parent",
    [
        {"name": "gw", "namespace": GW_NS, "sectionName": "nope"},
        {"name": "gw", "namespace": GW_NS, "port": 8443},
        {"name": "gw", "namespace": GW_NS, "sectionName": "http", "port": 443},
    ],
)
def test_no_selected_listener_is_no_matching_parent(parent: dict[str, Any]) -> None:
    """NoMatchingParent: "a Route ParentRef specifies a Port and/or SectionName that does not match any Listeners"."""
    gw = gateway(listener("http", "HTTP", 80), listener("https", "HTTPS", 443))
    assert decide(gw, route(parent=parent)) == "NoMatchingParent"


def test_a_gateway_without_listeners_is_no_matching_parent() -> None:
    """With nothing to select, no listener can be a parent."""
    gw = gateway()
    assert decide(gw, route()) == "NoMatchingParent"


# --------------------------------------------------------------------------- allowedRoutes.namespaces
def ns_listener(**allowed: Any) -> dict[str, Any]:
    return listener("http", allowedRoutes={"namespaces": allowed} if allowed else {})


@pytest.mark.parametrize(
    ("allowed", "route_ns", "labels", "expected"),
    [
        # allowedRoutes defaults to {namespaces: {from: Same}}.
        ({}, GW_NS, None, True),
        ({}, "team-a", {"team": "a"}, False),
        ({"from": "Same"}, GW_NS, None, True),
        ({"from": "Same"}, "team-a", None, False),
        ({"from": "All"}, "team-a", None, True),
        ({"from": "All"}, "team-a", {}, True),
        ({"from": "Selector", "selector": {"matchLabels": {"team": "a"}}}, "team-a", {"team": "a"}, True),
        ({"from": "Selector", "selector": {"matchLabels": {"team": "a"}}}, "team-b", {"team": "b"}, False),
        # The selector matches labels, not names: the gateway's own namespace is not special.
        ({"from": "Selector", "selector": {"matchLabels": {"team": "a"}}}, GW_NS, {}, False),
        # "This field is ignored for other values of From."
        ({"from": "Same", "selector": {"matchLabels": {"team": "a"}}}, "team-a", {"team": "a"}, False),
        ({"from": "All", "selector": {"matchLabels": {"team": "a"}}}, "team-b", {"team": "b"}, True),
        # Unknown namespace labels: the answer is not known...
        ({"from": "Selector", "selector": {"matchLabels": {"team": "a"}}}, "team-a", None, None),
        # ...unless the selector reads only the name label the apiserver puts on every namespace.
        ({"from": "Selector", "selector": {"matchLabels": {"kubernetes.io/metadata.name": "team-a"}}}, "team-a", None, True),
        ({"from": "Selector", "selector": {"matchLabels": {"kubernetes.io/metadata.name": "team-a"}}}, "team-b", None, False),
        ({"from": "Selector", "selector": {"matchLabels": {"kubernetes.io/metadata.name": "team-a", "x": "y"}}}, "team-a", None, None),
        # Selector without a selector, and an unknown "from", admit nothing.
        ({"from": "Selector"}, "team-a", {"team": "a"}, False),
        ({"from": "None"}, GW_NS, None, False),
    ],
)
def test_allowed_routes_namespaces_admit_routes_from_same_all_or_selected_namespaces(
    allowed: dict[str, Any], route_ns: str, labels: dict[str, str] | None, expected: bool | None
) -> None:
    """"Namespaces indicates namespaces from which Routes may be attached ... restricted to the namespace of this Gateway by default.\""""
    (lst,) = gateway(ns_listener(**allowed)).listeners
    got = listener_admits_namespace(lst, owner_namespace=GW_NS, route_namespace=route_ns, namespace_labels=labels)
    assert got is expected


def test_a_selector_on_the_metadata_name_label_selects_a_namespace_by_name() -> None:
    """The apiserver labels every namespace with ``kubernetes.io/metadata.name``, which selectors may use."""
    sel = {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["team-a"]}]}
    gw = gateway(ns_listener(**{"from": "Selector", "selector": sel}))
    rt = route(namespace="team-a")
    assert decide(gw, rt, labels={"kubernetes.io/metadata.name": "team-a"}) is None
    assert decide(gw, route(namespace="team-b"), labels={"kubernetes.io/metadata.name": "team-b"}) == "NotAllowedByListeners"


def test_an_unknown_namespace_is_accepted_provisionally_and_flagged() -> None:
    """When only the labels of an unknown namespace decide, the verdict is not a rejection but is marked unknown."""
    gw = gateway(ns_listener(**{"from": "Selector", "selector": {"matchLabels": {"team": "a"}}}))
    attachment = evaluate_attachment(
        route(namespace="team-a"), route(namespace="team-a").parent_refs[0], gw.listeners,
        owner_namespace=GW_NS, namespace_labels=None,
    )
    assert attachment.reason is None and attachment.unknown_namespace
    assert not any(v.accepts for v in attachment.verdicts)


# --------------------------------------------------------------------------- allowedRoutes.kinds
@pytest.mark.parametrize(
    ("protocol", "kind", "accepted"),
    [
        ("HTTP", "HTTPRoute", True),
        ("HTTP", "GRPCRoute", True),
        ("HTTP", "TLSRoute", False),
        ("HTTP", "TCPRoute", False),
        ("HTTPS", "HTTPRoute", True),
        ("HTTPS", "GRPCRoute", True),
        ("HTTPS", "TLSRoute", False),
        ("TLS", "TLSRoute", True),
        ("TLS", "HTTPRoute", False),
        ("TLS", "GRPCRoute", False),
        ("TCP", "TCPRoute", True),
        ("TCP", "HTTPRoute", False),
        ("TCP", "UDPRoute", False),
        ("UDP", "UDPRoute", True),
        ("UDP", "TCPRoute", False),
    ],
)
def test_without_allowed_kinds_the_listener_protocol_decides_the_route_kinds(
    protocol: str, kind: str, accepted: bool
) -> None:
    """"When unspecified or empty, the kinds of Routes selected are determined using the Listener protocol.\""""
    gw = gateway(listener("l", protocol, 1000))
    reason = decide(gw, route(kind))
    assert reason == (None if accepted else "NotAllowedByListeners")


@pytest.mark.parametrize("protocol", ["example.com/custom", "HBONE", "istio.io/PROXY", "http"])
@pytest.mark.parametrize("kind", ["HTTPRoute", "GRPCRoute", "TCPRoute", "TLSRoute"])
def test_an_implementation_specific_protocol_without_allowed_kinds_leaves_the_kinds_unknown(
    protocol: str, kind: str
) -> None:
    """Any protocol the CRD accepts that is not a core one is the implementation's to define:
    the route is not refused, and the verdict says its kind is unknown."""
    gw = gateway(listener("mesh", protocol, 15008))
    rt = route(kind, hostnames=("shop.example.com",) if kind in ("HTTPRoute", "GRPCRoute", "TLSRoute") else ())
    attachment = evaluate_attachment(rt, rt.parent_refs[0], gw.listeners, owner_namespace=GW_NS, namespace_labels={})
    assert attachment.reason is None and attachment.unknown_kind and not attachment.unknown_namespace
    assert not attachment.attached
    (verdict,) = attachment.verdicts
    assert verdict.kind_allowed is None and verdict.may_accept and not verdict.accepts


def test_an_implementation_specific_protocol_with_allowed_kinds_decides_by_them() -> None:
    """allowedRoutes.kinds makes the kinds known, whatever the protocol."""
    gw = gateway(listener("mesh", "HBONE", 15008, allowedRoutes={"kinds": [{"kind": "HTTPRoute"}]}))
    assert decide(gw, route("HTTPRoute")) is None
    assert decide(gw, route("TCPRoute")) == "NotAllowedByListeners"


@pytest.mark.parametrize("protocol", ["HBONE", "TCP", "example.com/custom"])
def test_a_listener_hostname_is_ignored_for_protocols_that_do_not_match_on_hostnames(protocol: str) -> None:
    """The spec: hostname "is ignored for protocols that don't require hostname based matching"."""
    kinds = {"allowedRoutes": {"kinds": [{"kind": "HTTPRoute"}]}}
    gw = gateway(listener("l", protocol, 15008, hostname="mesh.example.com", **kinds))
    assert decide(gw, route(hostnames=("shop.other.org",))) is None


def test_with_labels_unknown_the_hostname_step_counts_only_listeners_that_accept_the_kind() -> None:
    """A listener that refuses the route's kind cannot make its hostnames intersect, even
    while the namespace's labels are unknown."""
    selector = {"namespaces": {"from": "Selector", "selector": {"matchLabels": {"team": "a"}}}}
    gw = gateway(
        listener("http", hostname="a.example.com", allowedRoutes=selector),
        listener("tls", "TLS", 443, hostname="shop.example.com", allowedRoutes=selector),
    )
    rt = route(namespace="team-a", hostnames=("shop.example.com",))
    assert decide(gw, rt, labels=None) == "NoMatchingListenerHostname"


@pytest.mark.parametrize(
    ("kinds", "kind", "accepted"),
    [
        # RouteGroupKind.group defaults to gateway.networking.k8s.io.
        ([{"kind": "HTTPRoute"}], "HTTPRoute", True),
        ([{"kind": "HTTPRoute"}], "GRPCRoute", False),
        ([{"group": GROUP, "kind": "GRPCRoute"}], "GRPCRoute", True),
        ([{"kind": "HTTPRoute"}, {"kind": "GRPCRoute"}], "GRPCRoute", True),
        # An explicit group must match: "" is the core group, which has no HTTPRoute.
        ([{"group": "", "kind": "HTTPRoute"}], "HTTPRoute", False),
        ([{"group": "example.com", "kind": "HTTPRoute"}], "HTTPRoute", False),
        # An empty list is "unspecified or empty": the protocol's defaults apply.
        ([], "GRPCRoute", True),
    ],
)
def test_explicit_allowed_kinds_replace_the_protocol_defaults(
    kinds: list[dict[str, str]], kind: str, accepted: bool
) -> None:
    """"Kinds specifies the groups and kinds of Routes that are allowed to bind to this Gateway Listener.\""""
    gw = gateway(listener("l", "HTTP", 80, allowedRoutes={"kinds": kinds}))
    assert decide(gw, route(kind)) == (None if accepted else "NotAllowedByListeners")


def test_an_http_route_on_a_tls_only_listener_is_not_allowed_by_listeners() -> None:
    """Conformance GatewayListenerProtocolAndRouteKindConflicts: an HTTPRoute on a TLSRoute-only listener."""
    gw = gateway(
        listener("tls", "TLS", 443, hostname="abc.example.com", allowedRoutes={
            "namespaces": {"from": "Same"}, "kinds": [{"kind": "TLSRoute"}]})
    )
    parent = {"name": "gw", "namespace": GW_NS, "sectionName": "tls"}
    assert decide(gw, route("HTTPRoute", parent=parent)) == "NotAllowedByListeners"
    assert decide(gw, route("TLSRoute", parent=parent, hostnames=("abc.example.com",))) is None


# --------------------------------------------------------------------------- hostnames
@pytest.mark.parametrize(
    ("listener_hostname", "route_hostnames", "reason", "hostnames"),
    [
        (None, (), None, ("*",)),
        ("a.example.com", (), None, ("a.example.com",)),
        (None, ("a.example.com",), None, ("a.example.com",)),
        ("*.example.com", ("a.example.com", "a.other.org"), None, ("a.example.com",)),
        ("a.example.com", ("*.example.com",), None, ("a.example.com",)),
        ("*.example.com", ("apples.other.org",), "NoMatchingListenerHostname", ()),
        ("*.example.com", ("example.com",), "NoMatchingListenerHostname", ()),
    ],
)
def test_listener_and_route_hostnames_must_intersect(
    listener_hostname: str | None, route_hostnames: tuple[str, ...], reason: str | None, hostnames: tuple[str, ...]
) -> None:
    """"If both the Listener and HTTPRoute have specified hostnames, and none match ... the HTTPRoute is not accepted.\""""
    extra = {"hostname": listener_hostname} if listener_hostname else {}
    gw = gateway(listener("http", **extra))
    attachment = evaluate_attachment(
        route(hostnames=route_hostnames), route(hostnames=route_hostnames).parent_refs[0], gw.listeners,
        owner_namespace=GW_NS, namespace_labels=None,
    )
    assert attachment.reason == reason
    assert attachment.hostnames == hostnames


@pytest.mark.parametrize("kind", ["TCPRoute", "UDPRoute"])
def test_routes_without_hostnames_field_ignore_listener_hostnames(kind: str) -> None:
    """TCPRoute and UDPRoute have no hostnames; only the listener kind and namespace matter."""
    protocol = "TCP" if kind == "TCPRoute" else "UDP"
    gw = gateway(listener("l4", protocol, 5000))
    assert decide(gw, route(kind)) is None


def test_a_route_attaches_when_one_of_several_listeners_accepts_it() -> None:
    """"If 1 of 2 Gateway listeners accept attachment from the referencing Route, the Route MUST be considered successfully attached.\""""
    gw = gateway(
        listener("a", hostname="a.example.com"),
        listener("b", port=81, hostname="b.example.com", allowedRoutes={"namespaces": {"from": "All"}}),
        listener("tcp", "TCP", 5000),
    )
    rt = route(namespace="team-a", parent={"name": "gw", "namespace": GW_NS}, hostnames=("*.example.com",))
    attachment = evaluate_attachment(rt, rt.parent_refs[0], gw.listeners, owner_namespace=GW_NS, namespace_labels={})
    assert attachment.reason is None
    assert attachment.hostnames == ("b.example.com",)
    verdicts = {v.listener.name: v for v in attachment.verdicts}
    assert not verdicts["a"].accepts and verdicts["b"].attaches and not verdicts["tcp"].kind_allowed


# --------------------------------------------------------------------------- evaluation order
@pytest.mark.parametrize(
    ("parent", "route_ns", "kind", "hostnames", "reason"),
    [
        # A bad sectionName wins over everything else.
        ({"sectionName": "nope"}, "other", "TCPRoute", ("x.org",), "NoMatchingParent"),
        # Then the namespace/kind check, even when hostnames would not intersect either.
        ({}, "other", "HTTPRoute", ("x.org",), "NotAllowedByListeners"),
        ({}, GW_NS, "TCPRoute", (), "NotAllowedByListeners"),
        ({}, GW_NS, "TLSRoute", ("x.org",), "NotAllowedByListeners"),
        # Then hostnames.
        ({}, GW_NS, "HTTPRoute", ("x.org",), "NoMatchingListenerHostname"),
        ({}, GW_NS, "HTTPRoute", ("a.example.com",), None),
    ],
)
def test_reasons_are_evaluated_parent_then_listeners_then_hostnames(
    parent: dict[str, Any], route_ns: str, kind: str, hostnames: tuple[str, ...], reason: str | None
) -> None:
    """NoMatchingParent before NotAllowedByListeners before NoMatchingListenerHostname."""
    gw = gateway(listener("http", hostname="*.example.com"))
    rt = route(kind, namespace=route_ns, parent={"name": "gw", "namespace": GW_NS, **parent}, hostnames=hostnames)
    assert decide(gw, rt, labels={}) == reason


def test_hostname_mismatch_on_the_admitting_listener_is_no_matching_listener_hostname() -> None:
    """A listener that admits the route but shares no hostname does not attach it, whatever other listeners say."""
    gw = gateway(
        listener("mine", hostname="a.example.com"),
        listener("theirs", port=81, hostname="b.example.com", allowedRoutes={"namespaces": {"from": "Same"}}),
    )
    rt = route(namespace=GW_NS, hostnames=("b.example.com",), parent={"name": "gw", "namespace": GW_NS, "sectionName": "mine"})
    assert decide(gw, rt) == "NoMatchingListenerHostname"


# --------------------------------------------------------------------------- ListenerSet
LISTENERSET = {
    "apiVersion": f"{GROUP}/v1",
    "kind": "ListenerSet",
    "metadata": {"name": "first-workload-listeners", "namespace": "team-1-ns"},
    "spec": {
        "parentRef": {"namespace": "default", "name": "parent-gateway", "kind": "Gateway", "group": GROUP},
        "listeners": [
            {
                "name": "first",
                "hostname": "first.foo.com",
                "protocol": "HTTPS",
                "port": 443,
                "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "group": "", "name": "first-cert"}]},
            },
            {"name": "plain", "protocol": "HTTP", "port": 80, "allowedRoutes": {"namespaces": {"from": "All"}}},
        ],
    },
}


def test_listenerset_listeners_carry_the_set_and_its_namespace() -> None:
    """ListenerSet listeners are ordinary listeners owned by the set (its namespace for Same and refs)."""
    first, plain = listenerset_listeners(LISTENERSET)
    assert first.listener_set == ("team-1-ns", "first-workload-listeners")
    assert first.hostname == "first.foo.com" and first.protocol == "HTTPS" and first.port == 443
    assert first.field == "spec.listeners[0]"
    (cert,) = first.certificate_refs
    assert (cert.group, cert.kind, cert.namespace, cert.name) == ("", "Secret", "team-1-ns", "first-cert")
    assert first.allowed_from == "Same" and plain.allowed_from == "All"


@pytest.mark.parametrize(
    ("parent_ref", "expected"),
    [
        ({"namespace": "default", "name": "parent-gateway"}, ("default", "parent-gateway")),
        ({"name": "parent-gateway"}, ("team-1-ns", "parent-gateway")),
        ({"name": "parent-gateway", "kind": "Gateway", "group": GROUP}, ("team-1-ns", "parent-gateway")),
        ({"name": "gw", "kind": "NotAGateway"}, None),
        ({"name": "gw", "group": "example.com"}, None),
        ({}, None),
        ({"name": 3}, None),
    ],
)
def test_listenerset_parent_is_the_gateway_its_parent_ref_names(
    parent_ref: dict[str, Any], expected: tuple[str, str] | None
) -> None:
    """spec.parentRef defaults to a Gateway in the ListenerSet's namespace; other kinds are not parents."""
    obj = {**LISTENERSET, "spec": {**LISTENERSET["spec"], "parentRef": parent_ref}}
    assert listenerset_parent(obj) == expected


@pytest.mark.parametrize(
    ("route_ns", "section", "reason"),
    [
        ("team-1-ns", "first", None),
        # "Same" on a ListenerSet listener means the ListenerSet's namespace, not the Gateway's.
        ("default", "first", "NotAllowedByListeners"),
        ("elsewhere", "plain", None),
        ("team-1-ns", "missing", "NoMatchingParent"),
    ],
)
def test_routes_attach_to_listenerset_listeners_by_section_name(route_ns: str, section: str, reason: str | None) -> None:
    """"Routes can attach to a ListenerSet by specifying it as a parentRef, and can optionally target specific listeners using the sectionName field.\""""
    rt = route(
        namespace=route_ns,
        parent={"name": "first-workload-listeners", "namespace": "team-1-ns", "kind": "ListenerSet", "sectionName": section},
    )
    ref = rt.parent_refs[0]
    assert ref.is_listenerset
    got = evaluate_attachment(
        rt, ref, listenerset_listeners(LISTENERSET), owner_namespace="default", namespace_labels={}
    ).reason
    assert got == reason


def test_a_listener_view_describes_itself() -> None:
    """describe() names the listener, protocol, port and hostname for messages."""
    lst: Listener = parse_listener(listener("https", "HTTPS", 443, hostname="A.example.com"), owner_namespace="n", where="x")
    assert lst.describe() == "listener 'https' (HTTPS :443 a.example.com)"
    assert lst.tls_mode == "Terminate"
