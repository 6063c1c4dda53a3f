"""Hostname ownership, complete: through ListenerSets, on effective hostnames, by path, an
HTTPRoute beside a GRPCRoute, before the Gateway exists, and references whatever the parents.

Every case runs twice: through the engine, and as a real AdmissionReview over HTTPS to
the server holding the same policies and cluster view. Both must give the same answer.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest
from admission_table import NOW, Case, check_engine, check_https, meta, namespace, setup
from admission_table import case as table_case

from webhook.certs import CertificateFiles
from webhook.engine import decide
from webhook.offline import synthesize_request
from webhook.policy.loader import load_documents
from webhook.state.store import ClusterState

V1 = "gateway.networking.k8s.io/v1"


def listener(name: str, port: int, hostname: str | None = None, *, allowed: Any = "All") -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "port": port, "protocol": "HTTP"}
    out["allowedRoutes"] = {"namespaces": {"from": allowed} if isinstance(allowed, str) else allowed}
    return {**out, "hostname": hostname} if hostname else out


def gateway(name: str, *listeners: dict[str, Any], created: str | None = "2025-01-01T00:00:00Z",
            class_name: str = "cilium") -> dict[str, Any]:
    return {"apiVersion": V1, "kind": "Gateway", "metadata": meta("infra", name, created),
            "spec": {"gatewayClassName": class_name, "allowedListeners": {"namespaces": {"from": "All"}},
                     "listeners": list(listeners)}}


def listener_set(ns: str, name: str, *listeners: dict[str, Any], created: str | None = NOW) -> dict[str, Any]:
    return {"apiVersion": V1, "kind": "ListenerSet", "metadata": meta(ns, name, created),
            "spec": {"parentRef": {"name": "shared", "namespace": "infra"}, "listeners": list(listeners)}}


def path(kind: str, value: str) -> dict[str, Any]:
    return {"matches": [{"path": {"type": kind, "value": value}}], "backendRefs": [{"name": "web", "port": 8080}]}


def route(ns: str, name: str, parent: dict[str, Any] | list[dict[str, Any]] | None, hostnames: list[str] | None = None,
          *, created: str | None = NOW, kind: str = "HTTPRoute", rules: list[dict[str, Any]] | None = None,
          backend_namespace: str | None = None) -> dict[str, Any]:
    backend: dict[str, Any] = {"name": "web", "port": 8080}
    if backend_namespace:
        backend["namespace"] = backend_namespace
    spec: dict[str, Any] = {"rules": rules if rules is not None else [{"backendRefs": [backend]}]}
    if parent is not None:
        spec["parentRefs"] = parent if isinstance(parent, list) else [parent]
    if hostnames is not None:
        spec["hostnames"] = hostnames
    return {"apiVersion": V1, "kind": kind, "metadata": meta(ns, name, created), "spec": spec}


def on(section: str, gateway_name: str = "shared") -> dict[str, Any]:
    return {"name": gateway_name, "namespace": "infra", "sectionName": section}


def via(listener_set_name: str, ns: str = "other", section: str | None = None) -> dict[str, Any]:
    out = {"kind": "ListenerSet", "name": listener_set_name, "namespace": ns}
    return {**out, "sectionName": section} if section else out


SHARED_ACCESS = {"from": "Selector", "selector": {"matchLabels": {"shared-gateway-access": "true"}}}
SHARED = gateway(
    "shared",
    listener("http", 80, "*.example.com"),
    listener("foo", 8080, "foo.example.com", allowed=SHARED_ACCESS),  # the upstream multiple-namespace guide
    listener("grpc", 8081, "*.example.com"),
    listener("any", 9090),
)
CLUSTER = [
    namespace("infra"), namespace("team"), namespace("other"), namespace("zeta"),
    namespace("site-ns", **{"shared-gateway-access": "true"}), namespace("store-ns", **{"shared-gateway-access": "true"}),
    SHARED, gateway("free", listener("http", 80), class_name="other"),
    # A tenant's set, and a platform set (in the Gateway's namespace: it claims no name)
    listener_set("other", "ls", listener("app", 8443, "app.example.com"), created="2026-01-01T00:00:00Z"),
    listener_set("infra", "platform", listener("shop", 8444, "*.shop.example.com"), created="2026-01-01T00:00:00Z"),
    route("other", "old-via-ls", via("ls"), ["app.example.com"], created="2026-01-02T00:00:00Z"),
    route("other", "cart-via-ls", via("platform", "infra"), ["cart.shop.example.com"], created="2026-01-02T00:00:00Z"),
    # The upstream guide's site team on the shared host, without hostnames
    route("site-ns", "login", on("foo"), rules=[path("PathPrefix", "/login")], created="2026-02-01T00:00:00Z"),
    route("site-ns", "web", on("foo"), rules=[path("PathPrefix", "/web")], created="2026-02-01T00:00:00Z"),
    # HTTPRoutes that GRPCRoutes meet on a listener
    route("other", "api", on("grpc"), ["api.example.com"], created="2026-01-01T00:00:00Z"),
    route("other", "catch-all", on("any"), created="2026-01-01T00:00:00Z"),
    route("zeta", "tie", on("grpc"), ["tie.example.com"], created=NOW),
    # Routes applied before their Gateway infra/later
    route("other", "early", on("http", "later"), ["p.example.com"], created="2026-01-01T00:00:00Z"),
    route("team", "waiting", on("http", "later"), created="2026-02-01T00:00:00Z"),
    # A delegating parent route (kgateway) on the governed Gateway, and one on an ungoverned one
    route("infra", "parent", on("http"), ["delegate.example.com"], created="2026-01-01T00:00:00Z"),
    route("infra", "free-parent", {"name": "free", "namespace": "infra"}, created="2026-01-01T00:00:00Z"),
]

POLICY = """
apiVersion: routewarden.dev/v1alpha1
kind: TenancyPolicy
metadata: {name: shared}
spec:
  match:
    gateways: [{namespace: infra, name: shared}, {namespace: infra, name: later}]
"""
HOST = "  hostnames: {unique: true}\n"
BY_HOST = "  hostnames: {unique: host}\n"
BY_PATH = "  hostnames: {unique: path}\n"
MIRROR = ""  # only what the Gateway API itself says
BY_CLASS = """
apiVersion: routewarden.dev/v1alpha1
kind: TenancyPolicy
metadata: {name: by-class}
spec:
  match: {gatewayClassNames: [cilium]}
  hostnames: {unique: true}
"""


case = functools.partial(table_case, policy=POLICY + HOST)


GATEWAY_NOT_FOUND = "attachment/GatewayNotFound"
CONFLICT = "hostnames/HostnameConflict"
PATHS = "hostnames/PathConflict"
KINDS = "attachment/RouteKindConflict"
REF = "references/RefNotPermitted"
STORE_LOGIN = route("store-ns", "login", on("foo"), rules=[path("Exact", "/login")])
LATER = gateway("later", listener("http", 80, "p.example.com"), created=NOW)

MOVED = "blastradius/HostnamesMoved"


def _listeners(gw_obj: dict[str, Any], *, foo: str | None = None, any_port: int | None = None) -> list[dict[str, Any]]:
    """SHARED's listeners with listener foo's hostname or listener any's port changed."""
    out = []
    for item in gw_obj["spec"]["listeners"]:
        item = dict(item)
        if foo and item["name"] == "foo":
            item["hostname"] = foo
        if any_port and item["name"] == "any":
            item["port"] = any_port
        out.append(item)
    return out


SHARED_MOVED = gateway("shared", *_listeners(SHARED, foo="app.example.com"))
# a later route of zeta naming app.example.com, which namespace other serves through its ListenerSet: a
# conflict the view already holds
DUP = route("zeta", "dup", on("http"), ["app.example.com"], created="2026-03-01T00:00:00Z")

CASES = [
    # --- 1. a ListenerSet parent resolves to its Gateway
    case("direct-vs-set-route", "A route on the Gateway claiming a name a route on a tenant's set serves: denied.",
         route("team", "direct", on("http"), ["app.example.com"]), denied=(CONFLICT,), says=("namespace other",)),
    case("set-vs-set-route", "A route on the same set claiming that name: denied.",
         route("team", "via-ls2", via("ls"), ["app.example.com"]), denied=(CONFLICT,), says=("namespace other",)),
    case("direct-vs-platform-set-route", "Routes on a platform set compete with routes on the Gateway: the owner is "
         "the route, named.", route("team", "cart", on("http"), ["cart.shop.example.com"]), denied=(CONFLICT,),
         says=("HTTPRoute other/cart-via-ls",)),
    case("set-route-vs-direct", "A newcomer through a set against a route on the Gateway itself: denied.",
         route("team", "grab", via("platform", "infra"), ["x.shop.example.com"]), denied=(CONFLICT,),
         extra=(route("other", "shop", on("http"), ["x.shop.example.com"], created="2026-01-01T00:00:00Z"),),
         says=("HTTPRoute other/shop",)),
    case("set-route-elsewhere", "Another name through the set: allowed.",
         route("team", "mine", via("platform", "infra"), ["mine.shop.example.com"])),
    case("same-second-newcomer-sorting-first", "A CREATE in the very second an existing route was created, whose "
         "namespace sorts first: still the newcomer, denied (whole-second timestamps must not hand the name over).",
         route("aaa", "grab", on("http"), ["zz.example.com"]), denied=(CONFLICT,), says=("namespace zeta",),
         extra=(namespace("aaa"), route("zeta", "zz", on("http"), ["zz.example.com"], created=NOW)), online=True),
    case("gamma-parent-named-like-the-set", "A mesh route whose Service parent shares the set's name claims nothing.",
         route("team", "mesh", {"group": "", "kind": "Service", "name": "ls", "namespace": "other"},
               ["app.example.com"])),
    # --- 5. a route without hostnames takes the listener's
    case("no-hostnames-takes-site-login", "store-ns omitting hostnames on the site team's listener, matching "
         "Exact /login: it takes foo.example.com, which site-ns claimed first.", STORE_LOGIN, denied=(CONFLICT,),
         says=("hostname foo.example.com (the listener's", "namespace site-ns")),
    case("named-hostname-denied-too", "Naming the listener's hostname is denied the same way.",
         route("store-ns", "named", on("foo"), ["foo.example.com"]), denied=(CONFLICT,)),
    case("mirror-only-admits-the-guide", "Without hostnames.unique the upstream layout is what the API allows.",
         STORE_LOGIN, policy=POLICY + MIRROR),
    case("wildcard-route-narrowed", "A route listing *.example.com on the foo.example.com listener claims only "
         "foo.example.com there.", route("team", "wild", on("foo"), ["*.example.com"]),
         extra=(namespace("team", **{"shared-gateway-access": "true"}),), denied=(CONFLICT,),
         says=("hostname foo.example.com is already served by namespace site-ns",)),
    case("set-listener-takes-listener-hostname", "A tenant's ListenerSet listener for the name a route without "
         "hostnames serves through the Gateway's listener: the name is site-ns's.",
         listener_set("team", "steal", listener("foo", 9999, "foo.example.com")), denied=(CONFLICT,),
         says=("namespace site-ns", "HTTPRoute site-ns/login, hostname foo.example.com")),
    case("catch-all-claims-nothing", "No hostnames on a listener without one catches what nobody names: no claim.",
         route("team", "anything", on("any"))),
    case("refusing-listener-claims-nothing", "A listener that refuses the route's namespace gives it no name: "
         "only the controller's refusal is reported.", route("team", "login", on("foo")),
         denied=("attachment/NotAllowedByListeners",)),
    # --- 6. path ownership on a shared host
    case("path-split-admitted", "unique: path: store-ns serving /store on site's host does not overlap /login.",
         route("store-ns", "store", on("foo"), rules=[path("PathPrefix", "/store")]), policy=POLICY + BY_PATH),
    case("path-exact-inside-prefix", "Exact /login is inside site's PathPrefix /login: denied, naming the owner.",
         STORE_LOGIN, policy=POLICY + BY_PATH, denied=(PATHS,),
         says=("overlaps PathPrefix /login", "namespace site-ns", "HTTPRoute site-ns/login")),
    case("path-prefix-under-prefix", "PathPrefix /login/admin is under /login: denied.",
         route("store-ns", "admin", on("foo"), rules=[path("PathPrefix", "/login/admin")]), policy=POLICY + BY_PATH,
         denied=(PATHS,)),
    case("path-prefix-over-prefix", "PathPrefix / (a rule without matches) takes every path, /login included.",
         route("store-ns", "all", on("foo")), policy=POLICY + BY_PATH, denied=(PATHS,)),
    case("path-element-boundary", "PathPrefix /log is not a prefix of /login (whole path elements): admitted.",
         route("store-ns", "log", on("foo"), rules=[path("PathPrefix", "/log")]), policy=POLICY + BY_PATH),
    case("path-regex-unknown", "A RegularExpression path is implementation-specific: a possible overlap only warns.",
         route("store-ns", "api", on("foo"), rules=[path("PathPrefix", "/api")]), policy=POLICY + BY_PATH,
         extra=(route("site-ns", "api", on("foo"), rules=[path("RegularExpression", "/api/v[0-9]+")],
                      created="2026-02-01T00:00:00Z"),), warned=(PATHS,), says=("may overlap RegularExpression /api/v[0-9]+", "implementation-specific")),
    case("path-same-namespace", "A namespace may overlap its own paths.",
         route("site-ns", "login2", on("foo"), rules=[path("Exact", "/login")]), policy=POLICY + BY_PATH),
    case("path-host-mode-denies", "The same split with unique: host is a hostname conflict.",
         route("store-ns", "store", on("foo"), rules=[path("PathPrefix", "/store")]), policy=POLICY + BY_HOST,
         denied=(CONFLICT,)),
    case("path-update-adds-overlap", "An UPDATE adding an overlapping path is judged as new.",
         route("store-ns", "store", on("foo"), rules=[path("PathPrefix", "/store"), path("Exact", "/login")],
               created="2026-03-01T00:00:00Z"), operation="UPDATE",
         old=route("store-ns", "store", on("foo"), rules=[path("PathPrefix", "/store")], created="2026-03-01T00:00:00Z"),
         policy=POLICY + BY_PATH, denied=(PATHS,), says=("Exact /login",)),
    case("path-update-keeps-overlap", "An UPDATE keeping an overlap it had only warns (ratcheting).",
         route("store-ns", "store", on("foo"), rules=[path("Exact", "/login"), path("PathPrefix", "/store")],
               created="2026-03-01T00:00:00Z"), operation="UPDATE",
         old=route("store-ns", "store", on("foo"), rules=[path("Exact", "/login")], created="2026-03-01T00:00:00Z"),
         policy=POLICY + BY_PATH, warned=(PATHS,), says=("had this before this UPDATE",)),
    # --- 9. an HTTPRoute and a GRPCRoute on one listener
    case("grpc-after-http", "A GRPCRoute sharing a hostname with an older HTTPRoute on one listener is refused.",
         route("team", "g", on("grpc"), ["api.example.com"], kind="GRPCRoute"), policy=POLICY + MIRROR,
         denied=(KINDS,), says=("HTTPRoute other/api", "Accepted=False")),
    case("grpc-same-namespace", "The same namespace included: the controller accepts only one of them.",
         route("other", "g", on("grpc"), ["*.example.com"], kind="GRPCRoute"), policy=POLICY + MIRROR,
         denied=(KINDS,)),
    case("grpc-other-hostname", "Hostnames that do not intersect share the listener.",
         route("team", "g", on("grpc"), ["rpc.example.com"], kind="GRPCRoute"), policy=POLICY + MIRROR),
    case("grpc-other-listener", "Another listener with the same hostname: no conflict.",
         route("team", "g", on("http"), ["api.example.com"], kind="GRPCRoute"), policy=POLICY + MIRROR),
    case("grpc-catch-all", "Without hostnames on a listener without one, it intersects every HTTPRoute there.",
         route("team", "g", on("any"), kind="GRPCRoute"), policy=POLICY + MIRROR, denied=(KINDS,),
         says=("HTTPRoute other/catch-all",)),
    case("grpc-partly", "Refused on one parentRef while another attaches: a warning (partial attachment).",
         route("team", "g", [on("grpc"), on("http")], ["api.example.com"], kind="GRPCRoute"), policy=POLICY + MIRROR,
         warned=(KINDS,), says=("attachment.partialAttachment: warn",)),
    case("grpc-first-by-name", "Created in the same second and first by namespace/name: accepted, and the HTTPRoute "
         "it displaces is named.", route("team", "tie", on("grpc"), ["tie.example.com"], kind="GRPCRoute"),
         policy=POLICY + MIRROR, warned=(KINDS,), says=("stops accepting HTTPRoute zeta/tie",)),
    case("http-after-grpc", "An HTTPRoute after a GRPCRoute on one listener is refused the same way.",
         route("team", "h", on("grpc"), ["rpc.example.com"]), policy=POLICY + MIRROR,
         extra=(route("other", "rpc", on("grpc"), ["rpc.example.com"], kind="GRPCRoute",
                      created="2026-01-01T00:00:00Z"),), denied=(KINDS,), says=("GRPCRoute other/rpc",)),
    # --- 10. routes applied before their Gateway
    case("pending-same-parent", "Before infra/later exists, a second namespace claiming p.example.com on it is refused.",
         route("team", "pend", on("http", "later"), ["p.example.com"]), denied=(CONFLICT,),
         warned=(GATEWAY_NOT_FOUND,), says=("on Gateway infra/later (which is not in the manifests; both routes",
                                            "HTTPRoute other/early")),
    case("pending-other-parent", "A route naming another missing Gateway shares nothing with it.",
         route("team", "pend", on("http", "elsewhere"), ["p.example.com"]), warned=(GATEWAY_NOT_FOUND,),
         policy=BY_CLASS),
    case("pending-governance-unknown", "A policy matching by class cannot tell whether it governs a Gateway that does "
         "not exist: a warning.", route("team", "pend", on("http", "later"), ["p.example.com"]), policy=BY_CLASS,
         warned=(GATEWAY_NOT_FOUND, CONFLICT), says=("unknown until it exists",)),
    case("gateway-created-last", "Creating the Gateway the routes wait for warns about their conflicts, naming the "
         "later claimant.", LATER, warned=("blastradius/WaitingRoutesConflict",), online=True,
         says=("HTTPRoute team/waiting", "claimed first by namespace other")),
    case("gateway-in-manifests", "Offline the routes are judged against the Gateway in the same manifests: the "
         "Gateway does not repeat it.", LATER),
    case("gateway-created-no-unique", "Without hostnames.unique, nothing to say.", LATER, policy=POLICY + MIRROR,
         online=True),
    # --- 10b. a Gateway UPDATE that moves the hostnames of the routes on it
    case("listener-hostname-moved", "Moving listener foo to app.example.com gives site-ns's routes without hostnames "
         "a name namespace other serves through its ListenerSet: a warning naming them.",
         SHARED_MOVED, operation="UPDATE", old=SHARED, warned=(MOVED,), online=True,
         says=("HTTPRoute site-ns/login", "HTTPRoute site-ns/web", "claimed first by namespace other",
               "HTTPRoute other/old-via-ls")),
    case("listener-hostname-moved-offline", "The same change in check --baseline (the routes are not judged again).",
         SHARED_MOVED, operation="UPDATE", old=SHARED, warned=(MOVED,), says=("HTTPRoute site-ns/login",)),
    case("listener-moved-apart", "Moving listener foo to a name nobody claims says nothing.",
         gateway("shared", *_listeners(SHARED, foo="fresh.example.com")), operation="UPDATE", old=SHARED, online=True),
    case("listener-port-changed", "A change that moves no hostname (a port) says nothing, even with a conflict the "
         "routes already have.", gateway("shared", *_listeners(SHARED, any_port=9091)), operation="UPDATE",
         old=SHARED, online=True, extra=(DUP,)),
    case("listener-moved-old-conflict-not-repeated", "Only the conflicts the change brings are named: zeta/dup's "
         "conflict with namespace other on app.example.com was there before.", SHARED_MOVED, operation="UPDATE",
         old=SHARED, warned=(MOVED,), online=True, extra=(DUP,), says=("HTTPRoute site-ns/login",),
         never_says=("zeta/dup",)),
    case("listener-moved-no-unique", "Without hostnames.unique, nothing to say.", SHARED_MOVED, operation="UPDATE",
         old=SHARED, policy=POLICY + MIRROR, online=True),
    # --- 11. references, whatever the parents
    case("delegated-child", "A child route of a delegating parent route on a governed Gateway: its cross-namespace "
         "backendRef without a grant is refused.",
         route("team", "child", {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "parent",
                                 "namespace": "infra"}, backend_namespace="other"),
         denied=(REF,)),
    case("delegated-child-same-namespace", "A same-namespace reference never needs a grant.",
         route("team", "child", {"kind": "HTTPRoute", "name": "parent", "namespace": "infra"})),
    case("delegated-child-ungoverned", "Delegated from a route on a Gateway no policy governs: not judged.",
         route("team", "child", {"kind": "HTTPRoute", "name": "free-parent", "namespace": "infra"},
               backend_namespace="other")),
    case("delegated-child-parent-unknown", "The parent route is not in the view: which policy governs is unknown, "
         "a warning.", route("team", "child", {"kind": "HTTPRoute", "name": "missing", "namespace": "infra"},
                             backend_namespace="other"), warned=(REF,), says=("is not in the view",)),
    case("no-parents", "A route with no parentRefs (a delegation child selected by its parent) is judged, as a "
         "warning.", route("team", "orphan", None, backend_namespace="other"), warned=(REF,),
         says=("it has no parentRefs",)),
    case("delegating-parent-without-grant", "A parent route delegating to routes in another namespace (kgateway) "
         "without a grant: delegation is an implementation's extension, so only a warning.",
         route("infra", "delegator", on("http"), ["delegate2.example.com"], rules=[{"backendRefs": [
             {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "*", "namespace": "team"}]}]),
         warned=(REF,), says=("route delegation, an implementation's extension",)),
    case("delegating-parent-service-without-grant", "The same parent's Service in another namespace without a grant: "
         "refused, as the spec says.",
         route("infra", "delegator", on("http"), ["delegate2.example.com"], backend_namespace="other"), denied=(REF,)),
    case("mesh-route", "A mesh route (Service parent) is judged by match-everything policies only.",
         route("team", "mesh", {"group": "", "kind": "Service", "name": "web"}, backend_namespace="other")),
]


@pytest.mark.parametrize("c", CASES)
def test_ownership_rules_through_the_engine(c: Case) -> None:
    """Each case's denials, warnings and wording, from the engine."""
    check_engine(c, *setup(c, "", CLUSTER))


@pytest.mark.parametrize("c", CASES)
async def test_ownership_rules_through_the_https_server(c: Case, certificates: CertificateFiles) -> None:
    """The same cases as AdmissionReviews over real HTTPS: allowed, the denial's reasons, the warnings."""
    await check_https(c, *setup(c, "", CLUSTER), certificates, reasons={KINDS: "Conflicted"})


@pytest.mark.parametrize(
    "obj, policy, rule, first",
    [
        (route("team", "direct", on("http"), ["app.example.com"]), POLICY + HOST, CONFLICT, ("other", "old-via-ls")),
        (STORE_LOGIN, POLICY + HOST, CONFLICT, ("site-ns", "login")),
        (STORE_LOGIN, POLICY + BY_PATH, PATHS, ("site-ns", "login")),
        (route("team", "g", on("grpc"), ["api.example.com"], kind="GRPCRoute"), POLICY + MIRROR, KINDS,
         ("other", "api")),
        (route("team", "pend", on("http", "later"), ["p.example.com"]), POLICY + HOST, CONFLICT, ("other", "early")),
    ],
    ids=["through-a-set", "no-hostnames", "path", "grpc-beside-http", "before-the-gateway"],
)
def test_the_audit_reports_the_later_claimant_naming_the_owner_admission_names(
    obj: dict[str, Any], policy: str, rule: str, first: tuple[str, str]
) -> None:
    """Admitted anyway (two replicas at once): the audit reports it on the later route only,
    with the admission rule's own message, and nothing on the first claimant."""
    from webhook.audit import audit

    policies = load_documents([("p.yaml", policy)])
    admission = decide(synthesize_request(obj), policies, ClusterState.from_objects(CLUSTER))
    denial = next(v for v in admission.violations if v.rule == rule)
    stored = ClusterState.from_objects(CLUSTER)
    stored.offline = False  # as the webhook's watch-fed view: every object dated
    stored.apply(obj["kind"], obj)
    found = {(f.namespace, f.name, f.rule): f for f in audit(stored, policies).findings}
    later = found[(obj["metadata"]["namespace"], obj["metadata"]["name"], rule)]
    assert later.message == denial.message
    assert (*first, rule) not in found


@pytest.mark.parametrize(
    "obj, gateway, effective, words",
    [
        (route("team", "via", via("ls"), None), "Gateway infra/shared", ("app.example.com",),
         "effective hostnames on Gateway infra/shared: app.example.com (the listener's: the route lists no hostnames)"),
        (route("team", "wild", on("foo"), ["*.example.com", "other.org"]), "Gateway infra/shared", ("foo.example.com",),
         "effective hostnames on Gateway infra/shared: foo.example.com"),
        (route("team", "pend", on("http", "later"), ["p.example.com"]), "Gateway infra/later", ("p.example.com",),
         "(the route's own: the parent is not in the view"),
        (route("team", "all", on("any")), "Gateway infra/shared", ("*",), "effective hostnames on Gateway infra/shared: *"),
    ],
    ids=["through-a-set", "narrowed-by-the-listener", "parent-not-in-view", "catch-all"],
)
def test_explain_shows_the_effective_hostnames_per_parent(obj: dict[str, Any], gateway: str,
                                                         effective: tuple[str, ...], words: str) -> None:
    """explain names the Gateway a parent resolves to and what the route serves there, as ownership compares it."""
    from webhook.explain import explain_route, render_text

    state = ClusterState.from_objects([*CLUSTER, namespace("team", **{"shared-gateway-access": "true"})])
    report = explain_route(obj, state)
    (parent,) = report.parents
    assert (parent.gateway, parent.effective) == (gateway, effective)
    assert words in render_text([report])
    assert report.to_dict()["parents"][0]["effective"] == effective
