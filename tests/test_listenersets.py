"""ListenerSets on a shared Gateway: guardrails, conflicts, route kinds, hostname ownership, blast radius.

Every case runs twice: through the engine, and as a real AdmissionReview over HTTPS to
the server holding the same policies and cluster view. Both must give the same answer.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from admission_table import NOW, Case, check_engine, check_https, meta, namespace, setup
from admission_table import case as table_case

from webhook.certs import CertificateFiles
from webhook.engine import decide
from webhook.offline import synthesize_request
from webhook.state.store import ClusterState

V1 = "gateway.networking.k8s.io/v1"


def listener(name: str, port: int, protocol: str, hostname: str | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "port": port, "protocol": protocol, **extra}
    return {**out, "hostname": hostname} if hostname else out


def https(name: str, port: int, hostname: str, secret: str, **extra: Any) -> dict[str, Any]:
    return listener(name, port, "HTTPS", hostname, tls={"certificateRefs": [{"name": secret}]}, **extra)


def listener_set(ns: str, name: str, *listeners: dict[str, Any], created: str | None = NOW,
                 gateway: str = "shared") -> dict[str, Any]:
    return {"apiVersion": V1, "kind": "ListenerSet", "metadata": meta(ns, name, created),
            "spec": {"parentRef": {"name": gateway, "namespace": "infra"}, "listeners": list(listeners)}}


def gateway(ns: str, name: str, *listeners: dict[str, Any], allowed: str | None = "Selector",
            created: str | None = "2025-01-01T00:00:00Z", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"gatewayClassName": "cilium", "listeners": list(listeners), **spec}
    if allowed == "Selector":
        body["allowedListeners"] = {"namespaces": {"from": "Selector", "selector": {
            "matchExpressions": [{"key": "tenant", "operator": "Exists"}]}}}
    elif allowed:
        body["allowedListeners"] = {"namespaces": {"from": allowed}}
    return {"apiVersion": V1, "kind": "Gateway", "metadata": meta(ns, name, created), "spec": body}


def route(ns: str, name: str, parent: dict[str, Any], hostnames: list[str], created: str | None = NOW) -> dict[str, Any]:
    return {"apiVersion": V1, "kind": "HTTPRoute", "metadata": meta(ns, name, created),
            "spec": {"parentRefs": [parent], "hostnames": hostnames,
                     "rules": [{"backendRefs": [{"name": "echo", "port": 8080}]}]}}


def grant(name: str, from_kind: str, from_namespace: str, to_kind: str, to_name: str) -> dict[str, Any]:
    return {"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
            "metadata": {"name": name, "namespace": "certs"},
            "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": from_kind, "namespace": from_namespace}],
                     "to": [{"group": "", "kind": to_kind, "name": to_name}]}}


SHARED = gateway(
    "infra", "shared",
    listener("http", 80, "HTTP", "*.example.com", allowedRoutes={"namespaces": {"from": "All"}}),
    https("https", 443, "www.example.com", "www-tls"),
)
TLSGW = gateway(
    "infra", "tlsgw",
    listener("https", 443, "HTTPS", "*.example.com", tls={"certificateRefs": [{"name": "wild", "namespace": "certs"}]}),
    allowed=None,
    tls={"frontend": {"default": {"validation": {"caCertificateRefs": [
        {"group": "", "kind": "ConfigMap", "name": "ca", "namespace": "certs"}]}}}},
)
OTHER_LS = listener_set(
    "other", "ls",
    listener("echo", 80, "HTTP", "echo.example.com"),
    https("secure", 8443, "secure.example.com", "other-tls") | {
        "tls": {"certificateRefs": [{"name": "other-tls", "namespace": "certs"}]}},
    created="2026-01-01T00:00:00Z",
)
ECHO_ROUTE = route("other", "echo", {"kind": "ListenerSet", "name": "ls", "sectionName": "echo"},
                   ["echo.example.com"], created="2026-01-01T00:00:00Z")
DIRECT_ROUTE = route("other", "direct", {"name": "shared", "namespace": "infra", "sectionName": "http"},
                     ["app.example.com"], created="2026-01-02T00:00:00Z")
CLUSTER = [
    namespace("infra", tenant="platform"), namespace("team", tenant="team"), namespace("other", tenant="other"),
    namespace("alpha", tenant="alpha"), namespace("outsider"), namespace("certs"),
    SHARED, TLSGW, gateway("infra", "free", listener("http", 80, "HTTP"), allowed="All"),
    OTHER_LS, ECHO_ROUTE, DIRECT_ROUTE,
    grant("allow-tlsgw", "Gateway", "infra", "Secret", "wild"),
    grant("allow-ca", "Gateway", "infra", "ConfigMap", "ca"),
    grant("allow-other", "ListenerSet", "other", "Secret", "other-tls"),
]

POLICY = """
apiVersion: routewarden.dev/v1alpha1
kind: TenancyPolicy
metadata: {name: shared}
spec:
  match:
    gateways:
      - {namespace: infra, name: shared}
      - {namespace: infra, name: tlsgw}
      - {namespace: infra, name: kinds}
      - {namespace: infra, name: waypoint}
      - {namespace: infra, name: tcpgw}
      - {namespace: team, name: own}
"""
GUARDRAILS = """
  hostnames: {unique: true}
  gatewayGuardrails:
    allowAllNamespaces: {names: [infra]}
    listenerDomains: [example.com]
    requireCertificateRefs: true
"""
ALLOWED = """
  hostnames:
    allowed:
      - namespaces: {names: [team]}
        patterns: ["*.team.example.com"]
"""


def case(id: str, doc: str, obj: dict[str, Any] | None, *, policy: str = GUARDRAILS, **kw: Any) -> Any:
    return table_case(id, doc, obj, policy=policy, **kw)


BANK = listener("login", 443, "HTTPS", "login.bank.example.org", allowedRoutes={"namespaces": {"from": "All"}},
                tls={"mode": "Terminate"})
THREE_GUARDRAILS = ("gateway/AllNamespacesNotAllowed", "gateway/InvalidCertificateRef", "gateway/ListenerHostnameNotAllowed")
ECHO = listener("echo", 80, "HTTP", "echo.example.com")
TLS_HTTPROUTE_ONLY = listener("tls", 8443, "TLS", "t.example.com", tls={"mode": "Passthrough"},
                              allowedRoutes={"kinds": [{"kind": "HTTPRoute"}]})
LATE = listener_set("team", "late", ECHO, listener("own", 80, "HTTP", "late.example.com"), created="2026-05-01T00:00:00Z")
STUCK = listener_set("team", "stuck", ECHO, created="2026-05-01T00:00:00Z")
NO_TIMESTAMP = listener_set("other", "manifest", listener("x", 80, "HTTP", "x.example.com"), created=None)


def with_spec(obj: dict[str, Any], **spec: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["spec"].update(spec)
    return out


CASES = [
    # --- guardrails apply to ListenerSet listeners, with the set's namespace as owner
    case("set-guardrails", "A tenant set's HTTPS listener from: All, off-domain, without certificates: denied three times.",
         listener_set("team", "bank", BANK), denied=THREE_GUARDRAILS,
         says=("namespace team may not do", "login.bank.example.org")),
    case("gateway-guardrails-alike", "The same listener on a Gateway in the set's namespace is denied by the same rules.",
         gateway("team", "own", BANK, allowed=None), denied=THREE_GUARDRAILS),
    case("platform-set", "A set in the platform namespace may open to all namespaces.",
         listener_set("infra", "platform", https("login", 8443, "login.example.com", "login-tls",
                                                 allowedRoutes={"namespaces": {"from": "All"}}))),
    case("ungoverned-gateway", "A set on a Gateway no policy governs is not judged.",
         listener_set("team", "bank", BANK, gateway="free")),
    # --- conflicts (GEP-1713)
    case("duplicate-refused", "A duplicate of another team's port 80 echo.example.com listener leaves the set with "
         "nothing to serve: ListenersNotValid; with hostnames.unique the name is also another team's.",
         listener_set("team", "dup", ECHO), denied=("listeners/ListenersNotValid", "hostnames/HostnameConflict"),
         says=("ListenerSet other/ls", "that ListenerSet is older", "namespace other")),
    case("duplicate-mirror-only", "Without tenancy rules the conflict alone refuses the set.",
         listener_set("team", "dup", ECHO), policy="", denied=("listeners/ListenersNotValid",)),
    case("partly-conflicted", "A set with one Conflicted listener and one good one is accepted, with a warning.",
         listener_set("team", "dup", ECHO, listener("own", 80, "HTTP", "team.example.com")), policy="",
         warned=("listeners/Conflicted",), says=("HostnameConflict",)),
    case("tcp-beside-http", "TCP on the Gateway's HTTP port is a ProtocolConflict, and the Gateway comes first.",
         listener_set("team", "raw", listener("raw", 80, "TCP")), policy="", denied=("listeners/ListenersNotValid",),
         says=("ProtocolConflict", "the Gateway's own listeners come first")),
    case("http-after-tcp", "HTTP after the Gateway's TCP listener on one port is refused only by implementations "
         "that support TCP: a warning, never a denial.",
         listener_set("team", "pg", listener("web", 5432, "HTTP", "pg.example.com"), gateway="tcpgw"), policy="",
         extra=(gateway("infra", "tcpgw", listener("raw", 5432, "TCP"), allowed="All"),),
         warned=("listeners/Conflicted",), says=("if the implementation supports TCP listeners",)),
    case("udp-beside-http", "UDP on a TCP-based port is distinct.",
         listener_set("team", "dns", listener("dns", 80, "UDP")), policy=""),
    case("https-beside-http", "HTTPS on the HTTP port is distinct by the spec; implementations may refuse it: a warning.",
         listener_set("team", "mixed", https("web", 80, "web.example.com", "web-tls")), policy="",
         warned=("listeners/Conflicted",), says=("some implementations cannot serve HTTP and TLS on one port",)),
    case("older-set-wins", "An older set adding the listener keeps it; the newer set's listener becomes Conflicted.",
         listener_set("team", "early", ECHO, created="2025-06-01T00:00:00Z"), operation="UPDATE",
         old=listener_set("team", "early", listener("own", 80, "HTTP", "early.example.com"), created="2025-06-01T00:00:00Z"),
         policy="", warned=("blastradius/ListenersConflicted", "blastradius/RoutesDetached"),
         says=("listener 'echo' (HTTP :80 echo.example.com) of ListenerSet other/ls", "HTTPRoute other/echo")),
    case("same-second-by-name", "Created in the same second, the set first by namespace/name wins (alpha/ls < other/ls).",
         listener_set("alpha", "ls", ECHO, created="2026-01-01T00:00:00Z"), policy="",
         warned=("blastradius/ListenersConflicted", "blastradius/RoutesDetached"),
         says=("creating ListenerSet alpha/ls", "HTTPRoute other/echo (through ListenerSet other/ls)")),
    case("same-second-later-name", "Created in the same second, the set later by namespace/name loses.",
         listener_set("team", "ls", ECHO, created="2026-01-01T00:00:00Z"), policy="",
         denied=("listeners/ListenersNotValid",), says=("sorts first by namespace/name",)),
    case("unknown-order", "Offline, two sets without creationTimestamp: the clash only warns, on both sides.",
         listener_set("team", "x", listener("x", 80, "HTTP", "x.example.com"), created=None), policy="",
         extra=(NO_TIMESTAMP,), warned=("listeners/Conflicted",), says=("which ListenerSet is older is unknown",)),
    case("listener-hostname-taken", "Another port, so not Conflicted, but the name is another team's (hostnames.unique).",
         listener_set("team", "steal", listener("echo", 8080, "HTTP", "echo.example.com")),
         denied=("hostnames/HostnameConflict",), says=("namespace other",)),
    case("listener-hostname-not-allowed", "hostnames.allowed judges listener hostnames of the set's namespace.",
         listener_set("team", "ls", listener("web", 8080, "HTTP", "web.example.com"), listener("any", 8081, "HTTP")),
         policy=ALLOWED, denied=("hostnames/HostnameNotAllowed",), says=("*.team.example.com", "serves every hostname")),
    case("listener-hostname-allowed", "A listener hostname within the namespace's patterns passes.",
         listener_set("team", "ls", listener("web", 8080, "HTTP", "web.team.example.com")), policy=ALLOWED),
    case("platform-set-claims-nothing", "A set in the Gateway's namespace is the platform's: it takes no team's name.",
         listener_set("infra", "platform", listener("echo", 9090, "HTTP", "echo.example.com"))),
    case("route-on-conflicted-listener", "A route that attaches only to a Conflicted listener is warned, not refused "
         "(GEP-1713 lets it attach; traffic flows once the conflict is resolved).",
         route("team", "r", {"kind": "ListenerSet", "name": "late", "sectionName": "echo"}, ["echo.example.com"]),
         policy="", extra=(LATE,), warned=("listeners/Conflicted",), says=("attaches only to Conflicted listeners",)),
    case("route-on-good-listener", "A route on the set's listener that is not Conflicted gets nothing.",
         route("team", "r", {"kind": "ListenerSet", "name": "late", "sectionName": "own"}, ["late.example.com"]),
         policy="", extra=(LATE,)),
    # --- InvalidRouteKinds
    case("gateway-tls-httproute", "A TLS listener allowing only HTTPRoute serves nothing; the Gateway's other listener "
         "does: a warning.", gateway("infra", "kinds", listener("http", 80, "HTTP"), TLS_HTTPROUTE_ONLY),
         policy="", warned=("listeners/InvalidRouteKinds",), says=("TLS serves TCPRoute, TLSRoute",)),
    case("gateway-no-kind", "A Gateway whose only listener allows a kind that does not exist serves no route, but the "
         "controller accepts it (ResolvedRefs=False): a warning.",
         gateway("infra", "kinds", listener("http", 80, "HTTP", allowedRoutes={"kinds": [{"kind": "InvalidRoute"}]})),
         policy="", warned=("listeners/ListenersNotValid",), says=("InvalidRoute (not a route kind)",)),
    case("set-tls-httproute", "A set whose only listener is TLS allowing HTTPRoute: nothing to serve, but accepted: a "
         "warning.", listener_set("team", "tls", TLS_HTTPROUTE_ONLY), policy="",
         warned=("listeners/ListenersNotValid",)),
    case("set-tls-httproute-enforced", "The policy names ListenersNotValid in spec.rules: a set that serves no route "
         "is refused.", listener_set("team", "tls", TLS_HTTPROUTE_ONLY),
         policy="\n  rules: {listeners/ListenersNotValid: enforce}\n", denied=("listeners/ListenersNotValid",)),
    case("mixed-kinds", "Valid and invalid kinds on one listener: still serves the valid ones, a warning.",
         listener_set("team", "mixed", listener("web", 8080, "HTTP", "m.example.com", allowedRoutes={
             "kinds": [{"kind": "InvalidRoute"}, {"kind": "HTTPRoute"}]})), policy="",
         warned=("listeners/InvalidRouteKinds",), says=("it still serves HTTPRoute",)),
    case("implementation-kinds", "Only implementation-specific kinds: the implementation decides, a warning.",
         listener_set("team", "fancy", listener("web", 8080, "HTTP", "f.example.com", allowedRoutes={
             "kinds": [{"group": "example.com", "kind": "FancyRoute"}]})), policy="",
         warned=("listeners/InvalidRouteKinds",), says=("depends on the implementation",)),
    case("hbone", "An implementation protocol (Istio's HBONE) is never refused, whatever kinds it lists.",
         gateway("infra", "waypoint", listener("mesh", 15008, "HBONE", allowedRoutes={"kinds": [{"kind": "InvalidRoute"}]}),
                 allowed=None), policy=""),
    case("tls-tcproute", "TCPRoute on a TLS listener is what the spec suggests for a single target.",
         listener_set("team", "tcp", listener("tls", 8443, "TLS", "t.example.com", tls={"mode": "Passthrough"},
                                              allowedRoutes={"kinds": [{"kind": "TCPRoute"}]})), policy=""),
    # --- blast radius
    case("grant-for-gateway-certificate", "Deleting the grant that lets Gateway infra/tlsgw use Secret certs/wild.",
         None, operation="DELETE", old=grant("allow-tlsgw", "Gateway", "infra", "Secret", "wild"),
         warned=("blastradius/RefsRevoked",), says=("Gateway infra/tlsgw listener 'https'", "Secret certs/wild")),
    case("grant-for-gateway-ca", "Deleting the grant for the Gateway's client-validation CA ConfigMap.",
         None, operation="DELETE", old=grant("allow-ca", "Gateway", "infra", "ConfigMap", "ca"),
         warned=("blastradius/RefsRevoked",), says=("caCertificateRefs[0]", "ConfigMap certs/ca")),
    case("grant-for-set-certificate", "Changing the grant for a ListenerSet's certificate to another namespace.",
         grant("allow-other", "ListenerSet", "team", "Secret", "other-tls"), operation="UPDATE",
         old=grant("allow-other", "ListenerSet", "other", "Secret", "other-tls"),
         warned=("blastradius/RefsRevoked",), says=("ListenerSet other/ls listener 'secure'",)),
    case("allowed-listeners-none", "allowedListeners from Selector to None detaches the sets and their routes.",
         with_spec(SHARED, allowedListeners={"namespaces": {"from": "None"}}), operation="UPDATE", old=SHARED,
         warned=("blastradius/ListenerSetsDetached", "blastradius/RoutesDetached"),
         says=("ListenerSet other/ls", "HTTPRoute other/echo (through ListenerSet other/ls)")),
    case("gateway-delete", "Deleting the Gateway names the routes attached through its ListenerSets too.",
         None, operation="DELETE", old=SHARED, warned=("blastradius/ListenerSetsDetached", "blastradius/RoutesDetached"),
         says=("HTTPRoute other/direct", "HTTPRoute other/echo (through ListenerSet other/ls)")),
    case("gateway-takes-a-port", "A Gateway listener identical to a set's makes the set's listener Conflicted.",
         with_spec(SHARED, listeners=[*SHARED["spec"]["listeners"], ECHO]), operation="UPDATE", old=SHARED,
         warned=("blastradius/ListenersConflicted", "blastradius/RoutesDetached")),
    case("set-drops-a-listener", "A set UPDATE removing the listener a route attaches to.",
         listener_set("other", "ls", listener("new", 80, "HTTP", "new.example.com"), created="2026-01-01T00:00:00Z"),
         operation="UPDATE", old=OTHER_LS, warned=("blastradius/RoutesDetached",), says=("HTTPRoute other/echo",)),
    case("set-delete", "Deleting a set names the routes attached to it.",
         None, operation="DELETE", old=OTHER_LS, warned=("blastradius/RoutesDetached",), says=("HTTPRoute other/echo",)),
    # --- UPDATE judges what changes
    case("ratchet", "An UPDATE that leaves a refused set's listeners as they were only warns.",
         {**STUCK, "metadata": {**STUCK["metadata"], "labels": {"touched": "yes"}}}, operation="UPDATE", old=STUCK,
         policy="", extra=(STUCK,), warned=("listeners/ListenersNotValid",), says=("already so before this change",)),
]


def _setup(c: Case) -> tuple[Any, ClusterState]:
    return setup(c, POLICY, CLUSTER)


@pytest.mark.parametrize("c", CASES)
def test_listenerset_rules_through_the_engine(c: Case) -> None:
    """Each case's denials, warnings and wording, from the engine."""
    check_engine(c, *_setup(c))


@pytest.mark.parametrize("c", CASES)
async def test_listenerset_rules_through_the_https_server(c: Case, certificates: CertificateFiles) -> None:
    """The same cases as AdmissionReviews over real HTTPS: allowed, the denial's reasons, the warnings."""
    await check_https(c, *_setup(c), certificates)


def test_the_merged_listeners_follow_the_cluster_view() -> None:
    """Kept between requests for speed, the merged listeners are made again once the view changes."""
    policies, state = _setup(Case("follow", "", "CREATE", None, policy="", extra=(LATE,)))
    request = synthesize_request(route("team", "r", {"kind": "ListenerSet", "name": "late", "sectionName": "echo"},
                                       ["echo.example.com"]))
    assert decide(request, policies, state).rules == ("listeners/Conflicted",)
    state.remove("ListenerSet", "other", "ls")
    assert decide(request, policies, state).rules == ()
