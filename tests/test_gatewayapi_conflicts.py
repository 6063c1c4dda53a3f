"""GEP-1713's merged listeners: which listeners are Conflicted, in which precedence, and route kinds per protocol."""

from __future__ import annotations

from typing import Any

import pytest

from webhook import gatewayapi as gw

GROUP = "gateway.networking.k8s.io"


def listener(name: str, port: int, protocol: str, hostname: str | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "port": port, "protocol": protocol, **extra}
    if hostname is not None:
        out["hostname"] = hostname
    return out


def gateway(*listeners: dict[str, Any]) -> gw.Gateway:
    return gw.Gateway.from_object({"metadata": {"name": "shared", "namespace": "infra"},
                                   "spec": {"gatewayClassName": "c", "listeners": list(listeners),
                                            "allowedListeners": {"namespaces": {"from": "All"}}}})


def listener_set(namespace: str, name: str, *listeners: dict[str, Any], created: str = "") -> gw.ListenerSet:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if created:
        meta["creationTimestamp"] = created
    return gw.ListenerSet.from_object({"metadata": meta, "spec": {"parentRef": {"name": "shared", "namespace": "infra"},
                                                                  "listeners": list(listeners)}})


def verdicts(view: gw.MergedListeners, namespace: str, name: str) -> dict[str, str]:
    """listener name -> its reason when Conflicted, "may" when only doubted, "ok" otherwise."""
    return {e.listener.name: e.conflict.reason if e.conflict else "may" if e.doubts else "ok"
            for e in view.of("ListenerSet", namespace, name)}


@pytest.mark.parametrize(("ours", "theirs", "expected"), [
    pytest.param(listener("a", 80, "HTTP", "echo.example.com"), listener("b", 80, "HTTP", "echo.example.com"),
                 "HostnameConflict", id="same-port-protocol-hostname"),
    pytest.param(listener("a", 80, "HTTP", "echo.example.com"), listener("b", 80, "HTTP", "ECHO.example.com."),
                 "HostnameConflict", id="hostnames-compare-as-dns-names"),
    pytest.param(listener("a", 80, "HTTP", "a.example.com"), listener("b", 80, "HTTP", "b.example.com"),
                 "ok", id="another-hostname"),
    pytest.param(listener("a", 80, "HTTP"), listener("b", 80, "HTTP"), "HostnameConflict", id="both-without-hostname"),
    pytest.param(listener("a", 80, "HTTP"), listener("b", 80, "HTTP", "b.example.com"), "ok", id="one-without-hostname"),
    pytest.param(listener("a", 80, "HTTP", "*.example.com"), listener("b", 80, "HTTP", "b.example.com"),
                 "ok", id="wildcard-and-exact-are-distinct"),
    pytest.param(listener("a", 80, "HTTP", "echo.example.com"), listener("b", 8080, "HTTP", "echo.example.com"),
                 "ok", id="another-port"),
    pytest.param(listener("a", 443, "TLS", "t.example.com", tls={"mode": "Passthrough"}),
                 listener("b", 443, "TLS", "t.example.com", tls={"mode": "Terminate", "certificateRefs": [{"name": "c"}]}),
                 "HostnameConflict", id="tls-settings-do-not-make-listeners-distinct"),
    pytest.param(listener("a", 80, "HTTP", "a.example.com"), listener("b", 80, "TCP"), "ProtocolConflict",
                 id="tcp-beside-http"),
    pytest.param(listener("a", 443, "TLS", "a.example.com", tls={"mode": "Passthrough"}), listener("b", 443, "TCP"),
                 "ProtocolConflict", id="tcp-beside-tls"),
    pytest.param(listener("a", 80, "TCP"), listener("b", 80, "HTTP", "b.example.com"), "may",
                 id="http-after-tcp-depends-on-tcp-support"),
    pytest.param(listener("a", 5432, "TCP"), listener("b", 5432, "TCP"), "HostnameConflict", id="tcp-twice"),
    pytest.param(listener("a", 53, "UDP"), listener("b", 53, "UDP"), "HostnameConflict", id="udp-twice"),
    pytest.param(listener("a", 53, "TCP"), listener("b", 53, "UDP"), "ok", id="udp-beside-tcp"),
    pytest.param(listener("a", 443, "HTTPS", "a.example.com", tls={"certificateRefs": [{"name": "c"}]}),
                 listener("b", 443, "TLS", "b.example.com", tls={"mode": "Passthrough"}), "ok", id="tls-beside-https"),
    pytest.param(listener("a", 80, "HTTP", "a.example.com"),
                 listener("b", 80, "HTTPS", "b.example.com", tls={"certificateRefs": [{"name": "c"}]}),
                 "may", id="https-beside-http-is-the-implementations-choice"),
    pytest.param(listener("a", 15008, "HBONE"), listener("b", 15008, "HBONE"), "may",
                 id="implementation-protocol-duplicate-is-never-decided"),
    pytest.param(listener("a", 15008, "HBONE", "a.example.com"), listener("b", 15008, "HBONE", "b.example.com"),
                 "ok", id="implementation-protocol-other-hostname"),
    pytest.param(listener("a", 80, "HTTP"), listener("b", 80, "HBONE"), "may", id="implementation-protocol-shares-a-port"),
])
def test_a_listener_is_conflicted_when_port_protocol_and_hostname_do_not_tell_it_apart(
    ours: dict[str, Any], theirs: dict[str, Any], expected: str
) -> None:
    """The spec's "Distinct Listeners" rules, per protocol, for a set listener after a Gateway listener."""
    view = gw.merge_listeners(gateway(ours), [(listener_set("team", "ls", theirs, created="2026-01-01T00:00:00Z"), True)])
    assert verdicts(view, "team", "ls") == {"b": expected}
    assert not view.of("Gateway", "infra", "shared")[0].conflicted


@pytest.mark.parametrize(("first", "second", "winner"), [
    pytest.param(("zeta", "2026-01-01T00:00:00Z"), ("alpha", "2026-02-01T00:00:00Z"), "zeta", id="older-wins"),
    pytest.param(("alpha", "2026-02-01T00:00:00Z"), ("zeta", "2026-01-01T00:00:00Z"), "zeta", id="older-wins-listed-last"),
    pytest.param(("alpha", "2026-01-01T00:00:00Z"), ("zeta", "2026-01-01T00:00:00Z"), "alpha", id="same-second-by-name"),
    pytest.param(("zeta", "2026-01-01T00:00:00Z"), ("alpha", ""), "zeta", id="a-set-not-created-yet-is-newer"),
])
def test_listener_sets_take_precedence_by_creation_time_then_by_name(
    first: tuple[str, str], second: tuple[str, str], winner: str
) -> None:
    """GEP-1713: the Gateway, then ListenerSets oldest first, then by {namespace}/{name}."""
    echo = listener("echo", 80, "HTTP", "echo.example.com")
    sets = [listener_set(name, "ls", echo, created=created) for name, created in (first, second)]
    view = gw.merge_listeners(gateway(listener("http", 80, "HTTP", "www.example.com")), [(s, True) for s in sets])
    loser = second[0] if winner == first[0] else first[0]
    assert verdicts(view, winner, "ls") == {"echo": "ok"}
    assert verdicts(view, loser, "ls") == {"echo": "HostnameConflict"}
    [state] = view.of("ListenerSet", loser, "ls")
    assert state.conflict is not None and state.conflict.owner.namespace == winner


def test_the_gateway_comes_first_whatever_the_age_of_a_set() -> None:
    """A set older than its Gateway still loses a clash with the Gateway's own listener."""
    view = gw.merge_listeners(gateway(listener("http", 80, "HTTP", "echo.example.com")),
                              [(listener_set("team", "ls", listener("echo", 80, "HTTP", "echo.example.com"),
                                             created="2000-01-01T00:00:00Z"), True)])
    [state] = view.of("ListenerSet", "team", "ls")
    assert state.conflict is not None and state.conflict.owner.kind == "Gateway"


def test_two_sets_of_unknown_order_are_both_only_doubted() -> None:
    """Manifests without creationTimestamp: the clash is reported on both sides and decided on neither."""
    echo = listener("echo", 80, "HTTP", "echo.example.com")
    view = gw.merge_listeners(gateway(listener("http", 80, "HTTP", "www.example.com")),
                              [(listener_set("a", "ls", echo), True), (listener_set("b", "ls", echo), True)])
    assert verdicts(view, "a", "ls") == {"echo": "may"} and verdicts(view, "b", "ls") == {"echo": "may"}
    assert all("unknown" in doubt for e in view.entries for doubt in e.doubts)


def test_a_listener_after_a_refused_one_on_its_port_is_served() -> None:
    """As the conformance suite pins it: only listeners that are not Conflicted take a port from later ones."""
    view = gw.merge_listeners(
        gateway(listener("http", 80, "HTTP", "gateway.example.com")),
        [(listener_set("team", "ls", listener("raw", 80, "TCP"), listener("web", 80, "HTTP", "web.example.com"),
                       created="2026-01-01T00:00:00Z"), True),
         (listener_set("team", "later", listener("web2", 80, "HTTP", "later.example.com"),
                       created="2026-02-01T00:00:00Z"), True)],
    )
    assert verdicts(view, "team", "ls") == {"raw": "ProtocolConflict", "web": "ok"}
    assert verdicts(view, "team", "later") == {"web2": "ok"}


def test_two_listeners_of_one_resource_the_later_is_conflicted_the_earlier_only_doubted() -> None:
    """The spec lets an implementation refuse both indistinct listeners of one resource; the later one loses either way."""
    view = gw.merge_listeners(gateway(listener("web", 80, "HTTP", "w.example.com"), listener("raw", 80, "TCP")), [])
    web, raw = view.of("Gateway", "infra", "shared")
    assert raw.conflict is not None and raw.conflict.reason == "ProtocolConflict"
    assert not web.conflicted and web.doubts and "refuse both" in web.doubts[0]


def test_only_sets_the_gateway_accepts_are_merged() -> None:
    """A refused set takes nothing; a set whose acceptance is unknown only causes doubts."""
    echo = listener("echo", 80, "HTTP", "echo.example.com")
    refused = listener_set("refused", "ls", echo, created="2025-01-01T00:00:00Z")
    unknown = listener_set("unknown", "ls", echo, created="2025-06-01T00:00:00Z")
    ours = listener_set("team", "ls", echo, created="2026-01-01T00:00:00Z")
    view = gw.merge_listeners(gateway(listener("http", 80, "HTTP", "www.example.com")),
                              [(refused, False), (unknown, None), (ours, True)])
    assert view.of("ListenerSet", "refused", "ls") == ()
    assert verdicts(view, "team", "ls") == {"echo": "may"}
    assert "depends on namespace labels" in view.of("ListenerSet", "team", "ls")[0].doubts[0]


def test_merge_with_puts_the_candidate_in_place_of_its_stored_copy() -> None:
    """An UPDATE is judged with its new listeners, not beside the old copy of itself."""
    stored = listener_set("team", "ls", listener("echo", 80, "HTTP", "echo.example.com"), created="2026-01-01T00:00:00Z")
    updated = listener_set("team", "ls", listener("echo", 80, "HTTP", "echo.example.com"),
                           listener("more", 80, "HTTP", "more.example.com"), created="2026-01-01T00:00:00Z")
    view = gw.merge_with(gateway(listener("http", 80, "HTTP", "www.example.com")), [stored], labels=lambda _: {},
                         candidate=updated)
    assert verdicts(view, "team", "ls") == {"echo": "ok", "more": "ok"}
    gone = gw.merge_with(gateway(listener("http", 80, "HTTP", "www.example.com")), [stored], labels=lambda _: {},
                         candidate=stored, without=True)
    assert gone.of("ListenerSet", "team", "ls") == ()


@pytest.mark.parametrize(("protocol", "kinds", "valid", "invalid", "unknown"), [
    ("HTTP", [{"kind": "HTTPRoute"}, {"kind": "GRPCRoute"}], ["HTTPRoute", "GRPCRoute"], [], []),
    ("HTTPS", [{"kind": "TLSRoute"}], [], ["TLSRoute (not served on HTTPS)"], []),
    ("TLS", [{"kind": "HTTPRoute"}], [], ["HTTPRoute (not served on TLS)"], []),
    ("TLS", [{"kind": "TLSRoute"}, {"kind": "TCPRoute"}], ["TLSRoute", "TCPRoute"], [], []),
    ("TCP", [{"kind": "UDPRoute"}], [], ["UDPRoute (not served on TCP)"], []),
    ("UDP", [{"kind": "UDPRoute"}], ["UDPRoute"], [], []),
    ("HTTP", [{"kind": "InvalidRoute"}, {"kind": "HTTPRoute"}], ["HTTPRoute"], ["InvalidRoute (not a route kind)"], []),
    ("HTTP", [{"kind": "Gateway"}], [], ["Gateway (not a route kind)"], []),
    ("HTTP", [{"group": "", "kind": "Service"}], [], ["Service.core (not a route kind)"], []),
    ("HTTP", [{"group": "example.com", "kind": "FancyRoute"}], [], [], ["FancyRoute.example.com"]),
])
def test_route_kinds_are_judged_by_what_the_protocol_serves(
    protocol: str, kinds: list[dict[str, str]], valid: list[str], invalid: list[str], unknown: list[str]
) -> None:
    """Core protocols: the spec's kinds are valid, other Gateway API and core kinds invalid, other groups unknown."""
    tls = {"tls": {"mode": "Passthrough"}} if protocol == "TLS" else {}
    [parsed] = gateway(listener("l", 1, protocol, allowedRoutes={"kinds": kinds}, **tls)).listeners
    judged = gw.route_kinds(parsed)
    assert judged is not None
    assert (list(judged.valid), list(judged.invalid), list(judged.unknown)) == (valid, invalid, unknown)
    assert judged.usable is (True if valid else None if unknown else False)


@pytest.mark.parametrize("spec", [
    listener("waypoint", 15008, "HBONE", allowedRoutes={"kinds": [{"kind": "InvalidRoute"}]}),
    listener("http", 80, "HTTP"),
    listener("http", 80, "HTTP", allowedRoutes={"kinds": []}),
], ids=["implementation-protocol", "no-kinds", "empty-kinds"])
def test_route_kinds_the_spec_does_not_decide_are_not_judged(spec: dict[str, Any]) -> None:
    """A protocol that is not core is the implementation's; no kinds means the protocol's defaults."""
    [parsed] = gateway(spec).listeners
    assert gw.route_kinds(parsed) is None
