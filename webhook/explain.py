"""Why a route is (not) attached: the answer, parentRef by parentRef, as data.

For each parentRef of a route: which Gateway (or ListenerSet) it names, which of its
listeners the ``sectionName``/``port`` select, whether each selected listener admits the
route's namespace (``allowedRoutes.namespaces``) and kind (``allowedRoutes.kinds``), which
hostnames intersect, and the ``Accepted`` reason a controller would set. For each
backendRef: whether it crosses namespaces, and which ReferenceGrant permits it.

For each ListenerSet: whether its Gateway accepts it (``allowedListeners``), and for each
of its listeners whether the Gateway will serve it, or why not (``Conflicted`` with which
listener, ``InvalidRouteKinds``, a certificate without a ReferenceGrant), from the same
merged view of the Gateway's listeners the ``listeners/*`` rules use.

Built on :func:`webhook.gatewayapi.evaluate_attachment`, the same prediction the
validating rules make, so ``explain`` and ``check`` cannot disagree. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from . import gatewayapi as gw
from .offline import synthesize_request
from .policy.exceptions import applicable
from .policy.model import PolicySet
from .policy.placeholders import NamespaceFacts, describe_all, resolve_all
from .rules.ownership import route_claims
from .state.store import ClusterState


@dataclass(frozen=True, slots=True)
class ListenerReport:
    name: str
    owner: str  # "Gateway infra/shared" or "ListenerSet ns/name"
    protocol: str
    port: int | None
    hostname: str | None
    selected: bool
    namespace_allowed: bool | None  # None: depends on labels of a namespace we do not know
    namespaces: str  # what allowedRoutes.namespaces admits, in words
    kind_allowed: bool | None  # None: an implementation-specific protocol decides
    kinds: tuple[str, ...]
    hostnames: tuple[str, ...]  # the intersection with the route's hostnames
    attaches: bool
    why_not: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ParentReport:
    ref: str
    field: str
    found: bool
    accepted: bool | None  # None: the answer depends on something the view does not hold
    reason: str  # the Accepted condition's reason, as the Gateway API spells it
    message: str
    listeners: tuple[ListenerReport, ...]
    hostnames: tuple[str, ...]
    # The Gateway the parent resolves to (a ListenerSet's parent; the parent as named while
    # it is not in the view) and the route's effective hostnames there: its hostnames
    # intersected with each listener's, or the listener's when it lists none ("*": every
    # name). What hostname ownership compares (rules/ownership.py).
    gateway: str = ""
    effective: tuple[str, ...] = ()
    effective_from: str = ""  # "listener" (the route lists none), "route" (the parent is not in the view), or ""


@dataclass(frozen=True, slots=True)
class BackendReport:
    ref: str
    field: str
    cross_namespace: bool
    permitted: bool
    grant: str | None  # "ReferenceGrant ns/name" when one permits it
    message: str


@dataclass(frozen=True, slots=True)
class PolicyNote:
    """What a policy says about the route before any rule runs: how its hostname patterns
    resolve for the route's namespace, and which exceptions cover it."""

    source: str  # "TenancyPolicy shared-gateway" or "TenancyException catch-all-redirect"
    text: str


@dataclass(frozen=True, slots=True)
class RouteReport:
    kind: str
    namespace: str
    name: str
    source: str
    line: int | None
    parents: tuple[ParentReport, ...]
    backends: tuple[BackendReport, ...]
    error: str = ""
    policy: tuple[PolicyNote, ...] = ()

    @property
    def attached(self) -> bool:
        """Every parent routewarden predicts accepts the route (mesh parents are not predicted)."""
        predicted = [p for p in self.parents if p.reason != "NotAGateway"]
        return bool(self.parents) and all(p.accepted for p in predicted)

    @property
    def partially_attached(self) -> bool:
        """Some parents accept the route and others refuse it: the controller attaches it where accepted."""
        predicted = [p for p in self.parents if p.reason != "NotAGateway"]
        return any(p.accepted for p in predicted) and not self.attached

    @property
    def headline(self) -> str:
        """The summary that the parentRef details bear out: attached, not, partly, or unknown."""
        predicted = [p.accepted for p in self.parents if p.reason != "NotAGateway"]
        if not self.parents:
            return "NOT attached"
        if not predicted:
            return "attachment not predicted (mesh parents only)"
        yes, no = predicted.count(True), predicted.count(False)
        if yes == len(predicted):
            return "attached"
        if no == len(predicted):
            return "NOT attached"
        if yes:
            unknown = f", cannot tell for {len(predicted) - yes - no}" if yes + no < len(predicted) else ""
            return f"attached to {yes} of {len(predicted)} parents{unknown}"
        return "cannot tell whether attached" if not no else f"NOT attached to {no} parents, cannot tell for the rest"

    @property
    def refs_resolved(self) -> bool:
        return all(b.permitted for b in self.backends)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "attached": self.attached, "partiallyAttached": self.partially_attached,
                "headline": self.headline,
                "refsResolved": self.refs_resolved}


# ----------------------------------------------------------------------------- listeners
def describe_namespaces(listener: gw.Listener) -> str:
    if listener.allowed_from == "All":
        return "all namespaces (from: All)"
    if listener.allowed_from == "Same":
        return "only its own namespace (from: Same)"
    if listener.allowed_from == "Selector":
        selector = listener.allowed_selector.describe() if listener.allowed_selector else "<none>"
        return f"namespaces labelled {selector} (from: Selector)"
    return f"no namespace (from: {listener.allowed_from})"


def _selection(listener: gw.Listener, ref: gw.ParentRef) -> list[str]:
    out = []
    if ref.section_name is not None and listener.name != ref.section_name:
        out.append(f"not selected: sectionName is {ref.section_name!r}")
    if ref.port is not None and listener.port != ref.port:
        out.append(f"not selected: port is {ref.port}, the listener's is {listener.port}")
    return out


def _listener_report(
    listener: gw.Listener, ref: gw.ParentRef, verdict: gw.ListenerVerdict | None, *, owner: str, route: gw.Route
) -> ListenerReport:
    kinds = tuple(sorted(k for _, k in listener.accepted_kinds()))
    why = _selection(listener, ref)
    if verdict is not None:
        if verdict.namespace_allowed is False:
            why.append(f"namespace {route.namespace} not admitted: the listener admits {describe_namespaces(listener)}")
        elif verdict.namespace_allowed is None:
            why.append(f"cannot tell: namespace {route.namespace} is not declared, so its labels are unknown")
        if verdict.kind_allowed is False:
            why.append(f"kind {route.kind} not admitted: the listener accepts {', '.join(kinds) or 'no kinds'}")
        elif verdict.kind_allowed is None:
            why.append(f"cannot tell: protocol {listener.protocol} is implementation-specific and the listener lists "
                       f"no allowedRoutes.kinds, so the implementation decides whether it accepts {route.kind}")
        if not verdict.hostnames:
            why.append(f"no hostname of the route ({', '.join(route.hostnames)}) is under {listener.hostname}")
    return ListenerReport(
        name=listener.name,
        owner=owner,
        protocol=listener.protocol,
        port=listener.port,
        hostname=listener.hostname,
        selected=verdict is not None,
        namespace_allowed=verdict.namespace_allowed if verdict else None,
        namespaces=describe_namespaces(listener),
        kind_allowed=verdict.kind_allowed if verdict else listener_kind_ok(listener, route),
        kinds=kinds,
        hostnames=verdict.hostnames if verdict else (),
        attaches=bool(verdict and verdict.attaches),
        why_not=tuple(why),
    )


def listener_kind_ok(listener: gw.Listener, route: gw.Route) -> bool | None:
    return gw.listener_admits_kind(listener, group=gw.GROUP, kind=route.kind)


# ----------------------------------------------------------------------------- parents
_MESSAGES = {
    None: "at least one listener admits the route",
    "NoMatchingParent": "no listener matches the parentRef's sectionName/port",
    "NotAllowedByListeners": "no selected listener admits the route's namespace and kind",
    "NoMatchingListenerHostname": "no selected listener that admits the route serves one of its hostnames",
}


def _parent(state: ClusterState, ref: gw.ParentRef) -> tuple[str, tuple[gw.Listener, ...], bool]:
    """(owner description, listeners, found) for a Gateway or ListenerSet parentRef."""
    if ref.is_gateway:
        gateway = state.gateway(ref.namespace, ref.name)
        return f"Gateway {ref.namespace}/{ref.name}", (gateway.listeners if gateway else ()), gateway is not None
    obj = state.get("ListenerSet", ref.namespace, ref.name)
    if obj is None:
        return f"ListenerSet {ref.namespace}/{ref.name}", (), False
    return f"ListenerSet {ref.namespace}/{ref.name}", gw.listenerset_listeners(obj), True


def explain_parent(route: gw.Route, ref: gw.ParentRef, state: ClusterState) -> ParentReport:
    report = _explain_parent(route, ref, state)
    claims = [c for c in route_claims(state, route) if c.ref == ref]
    if not claims:
        return report
    source = "route" if claims[0].pending else "listener" if not route.hostnames else ""
    return replace(report, gateway=claims[0].describe_gateway(), effective=tuple(dict.fromkeys(c.hostname for c in claims)),
                   effective_from=source)


def _explain_parent(route: gw.Route, ref: gw.ParentRef, state: ClusterState) -> ParentReport:
    if not (ref.is_gateway or ref.is_listenerset):
        return ParentReport(ref.describe(), ref.field, False, None, "NotAGateway",
                            f"{ref.kind if not ref.group else f'{ref.kind}.{ref.group}'} parents are not Gateways; "
                            "routewarden does not predict them",
                            (), ())
    owner, listeners, found = _parent(state, ref)
    if not found:
        return ParentReport(ref.describe(), ref.field, False, False, "GatewayNotFound",
                            f"{owner} is neither in the manifests nor (with --cluster) in the cluster", (), ())
    if ref.is_listenerset:
        refused = _listenerset_refused(state, ref, owner)
        if refused is not None:
            return refused
    attachment = gw.evaluate_attachment(
        route, ref, listeners, owner_namespace=ref.namespace, namespace_labels=state.namespace_labels(route.namespace)
    )
    verdicts = {v.listener.name: v for v in attachment.verdicts}
    reports = tuple(
        _listener_report(listener, ref, verdicts.get(listener.name), owner=owner, route=route) for listener in listeners
    )
    accepted: bool | None = attachment.reason is None
    message = _MESSAGES.get(attachment.reason, attachment.reason or "")
    if accepted and not attachment.attached:
        accepted = None
        unknown = []
        if attachment.unknown_namespace:
            unknown.append(f"the labels of namespace {route.namespace}, which is not declared: "
                           "add the Namespace manifest (or use --cluster)")
        if attachment.unknown_kind:
            unknown.append(f"the implementation, whose protocol lists no allowedRoutes.kinds for {route.kind}")
        message = "depends on " + "; and on ".join(unknown)
    return ParentReport(ref.describe(), ref.field, True, accepted, attachment.reason or "Accepted", message,
                        reports, attachment.hostnames)


def _listenerset_refused(state: ClusterState, ref: gw.ParentRef, owner: str) -> ParentReport | None:
    """A ListenerSet serves routes only once its Gateway exists and accepts it (``allowedListeners``),
    as the ``attachment/NotAllowedByListeners`` rule decides."""
    parent = gw.listenerset_parent(state.get("ListenerSet", ref.namespace, ref.name) or {})
    gateway = state.gateway(*parent) if parent else None
    if gateway is None:
        where = f"Gateway {parent[0]}/{parent[1]}" if parent else "its parent Gateway"
        return ParentReport(ref.describe(), ref.field, False, False, "GatewayNotFound",
                            f"{where} (the parent of {owner}) is neither in the manifests nor (with --cluster) "
                            "in the cluster", (), ())
    admitted = gw.gateway_admits_listenerset(gateway, namespace=ref.namespace,
                                             namespace_labels=state.namespace_labels(ref.namespace))
    if admitted is True:
        return None
    if admitted is None:
        return ParentReport(ref.describe(), ref.field, True, None, "NotAllowedByListeners",
                            f"whether {gateway.describe()} accepts {owner} depends on the labels of namespace "
                            f"{ref.namespace}, which is not declared: add the Namespace manifest (or use --cluster)",
                            (), ())
    return ParentReport(ref.describe(), ref.field, True, False, "NotAllowedByListeners",
                        f"{owner} is not accepted by {gateway.describe()} (allowedListeners.namespaces.from: "
                        f"{gateway.allowed_listeners_from}), so none of its listeners serve routes", (), ())


# ----------------------------------------------------------------------------- backends
def explain_backend(route: gw.Route, ref: gw.ObjectRef, state: ClusterState) -> BackendReport:
    permitted = gw.reference_permitted(
        state.reference_grants(ref.namespace), from_group=gw.GROUP, from_kind=route.kind,
        from_namespace=route.namespace, to=ref,
    )
    if permitted is True:
        return BackendReport(ref.describe(), ref.field, False, True, None, "same namespace: no grant needed")
    if isinstance(permitted, gw.ReferenceGrant):
        return BackendReport(ref.describe(), ref.field, True, True, permitted.describe(),
                             f"permitted by {permitted.describe()}")
    return BackendReport(
        ref.describe(), ref.field, True, False, None,
        f"RefNotPermitted: no ReferenceGrant in namespace {ref.namespace} allows {route.kind} from namespace "
        f"{route.namespace} to refer to {ref.describe()}",
    )


# ----------------------------------------------------------------------------- routes
def policy_notes(obj: Mapping[str, Any], route: gw.Route, state: ClusterState, policies: PolicySet) -> list[PolicyNote]:
    """How each policy's hostname patterns resolve for the route's namespace, and the
    exceptions whose match covers the route."""
    labels = state.namespace_labels(route.namespace)
    facts = NamespaceFacts.of(route.namespace, state.get("Namespace", "", route.namespace))
    notes = []
    for p in policies.tenancy:
        if not p.hostnames_allowed:
            continue
        mine = [a for a in p.hostnames_allowed if a.namespaces.contains(route.namespace, labels)]
        resolved = resolve_all((t for a in mine for t in a.patterns), facts)
        notes.append(PolicyNote(f"TenancyPolicy {p.name}",
                                f"hostnames allowed for namespace {route.namespace}: {describe_all(resolved) or 'none'}"))
    meta = obj.get("metadata") or {}
    for e in applicable(policies.exceptions, synthesize_request(obj), labels):
        state_text = (f"expired on {e.expires_text}, covers nothing" if e.expired(datetime.now(UTC))
                      else f"until {e.expires_text}" if e.expires_text else "no expiry")
        notes.append(PolicyNote(f"TenancyException {e.name}",
                                f"excepts {', '.join(sorted(e.rules))} for {route.kind} {route.namespace}/"
                                f"{meta.get('name', '')} ({e.reason}; {state_text})"))
    return notes


def explain_route(
    obj: Mapping[str, Any], state: ClusterState, *, source: str = "", line: int | None = None,
    policies: PolicySet | None = None,
) -> RouteReport:
    meta = obj.get("metadata") or {}
    kind = str(obj.get("kind") or "")
    try:
        route = gw.Route.from_object(obj, kind=kind)
    except gw.MalformedObject as exc:
        return RouteReport(kind, str(meta.get("namespace") or ""), str(meta.get("name") or ""), source, line,
                           (), (), error=str(exc))
    return RouteReport(
        kind=kind, namespace=route.namespace, name=route.name, source=source, line=line,
        parents=tuple(explain_parent(route, ref, state) for ref in route.parent_refs),
        backends=tuple(explain_backend(route, ref, state) for ref in route.backend_refs),
        policy=tuple(policy_notes(obj, route, state, policies)) if policies is not None else (),
    )


def is_route(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") in gw.ROUTE_KINDS and str(obj.get("apiVersion") or "").startswith(gw.GROUP + "/")


def explain(
    objects: Iterable[tuple[Mapping[str, Any], str, int | None]], state: ClusterState,
    policies: PolicySet | None = None,
) -> list[RouteReport]:
    """A report for every route among (object, source, line) triples; other kinds are skipped."""
    return [explain_route(obj, state, source=src, line=line, policies=policies)
            for obj, src, line in objects if is_route(obj)]


# ----------------------------------------------------------------------------- listener sets
@dataclass(frozen=True, slots=True)
class SetListenerReport:
    name: str
    protocol: str
    port: int | None
    hostname: str | None
    served: bool | None  # None: it may be refused (see why)
    kinds: tuple[str, ...]  # the route kinds it serves
    why: tuple[str, ...]  # why it is not served, or what may stop it


@dataclass(frozen=True, slots=True)
class ListenerSetReport:
    namespace: str
    name: str
    source: str
    line: int | None
    gateway: str
    accepted: bool | None  # None: depends on something the view does not hold
    reason: str  # the ListenerSet's Accepted reason, as the Gateway API spells it
    message: str
    listeners: tuple[SetListenerReport, ...]
    error: str = ""

    @property
    def served(self) -> bool:
        """The Gateway accepts the set and serves every listener of it."""
        return bool(self.accepted) and all(lr.served for lr in self.listeners)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "served": self.served}


def _set_listener(state: ClusterState, listener_set: gw.ListenerSet, entry: gw.ListenerState) -> SetListenerReport:
    listener = entry.listener
    why: list[str] = []
    served: bool | None = True
    if entry.conflict is not None:
        served = False
        why.append(f"Conflicted ({entry.conflict.reason}): {entry.conflict.describe()}, which comes first")
    kinds = gw.route_kinds(listener)
    supported = tuple(sorted(k for _, k in listener.accepted_kinds())) if kinds is None else kinds.valid + kinds.unknown
    if kinds is not None and kinds.invalid:
        why.append(f"InvalidRouteKinds: {', '.join(kinds.invalid)}")
        served = False if kinds.usable is False else served
    for ref in listener.certificate_refs:
        permitted = gw.reference_permitted(state.reference_grants(ref.namespace), from_group=gw.GROUP,
                                           from_kind="ListenerSet", from_namespace=listener_set.namespace, to=ref)
        if permitted is None:
            served = False
            why.append(f"RefNotPermitted: no ReferenceGrant in namespace {ref.namespace} allows ListenerSet from "
                       f"namespace {listener_set.namespace} to use {ref.describe()}")
    if served and (entry.doubts or (kinds is not None and kinds.usable is None)):
        served = None
    why.extend(entry.doubts)
    return SetListenerReport(listener.name, listener.protocol, listener.port, listener.hostname, served, supported,
                             tuple(why))


def explain_listenerset(
    obj: Mapping[str, Any], state: ClusterState, *, source: str = "", line: int | None = None
) -> ListenerSetReport:
    """Whether the ListenerSet's Gateway accepts it, and which of its listeners it will serve."""
    meta = obj.get("metadata") or {}
    try:
        listener_set = gw.ListenerSet.from_object(obj)
    except gw.MalformedObject as exc:
        return ListenerSetReport(str(meta.get("namespace") or ""), str(meta.get("name") or ""), source, line, "",
                                 False, "Invalid", "", (), error=str(exc))

    def report(gateway: str, accepted: bool | None, reason: str, message: str,
               listeners: tuple[SetListenerReport, ...] = ()) -> ListenerSetReport:
        return ListenerSetReport(listener_set.namespace, listener_set.name, source, line, gateway, accepted, reason,
                                 message, listeners)

    if listener_set.parent is None:
        return report("", None, "NotAGateway", "its parentRef names a kind other than Gateway; routewarden does not "
                                               "predict it")
    parent = f"Gateway {listener_set.parent[0]}/{listener_set.parent[1]}"
    gateway = state.gateway(*listener_set.parent)
    if gateway is None:
        return report(parent, False, "GatewayNotFound",
                      f"{parent} is neither in the manifests nor (with --cluster) in the cluster")
    admitted = gw.gateway_admits_listenerset(gateway, namespace=listener_set.namespace,
                                             namespace_labels=state.namespace_labels(listener_set.namespace))
    if admitted is False:
        return report(parent, False, "NotAllowed", f"{parent} does not accept ListenerSets from namespace "
                      f"{listener_set.namespace} (allowedListeners.namespaces.from: {gateway.allowed_listeners_from})")
    view = gw.merge_with(gateway, state.listenersets_for(*gateway.key), labels=state.namespace_labels,
                         candidate=listener_set)
    listeners = tuple(_set_listener(state, listener_set, e) for e in view.of("ListenerSet", *listener_set.key))
    if listeners and all(e.conflicted for e in view.of("ListenerSet", *listener_set.key)):
        return report(parent, False, "ListenersNotValid", "every listener of it is Conflicted", listeners)
    if admitted is None:
        return report(parent, None, "NotAllowed", f"whether {parent} accepts it depends on the labels of namespace "
                      f"{listener_set.namespace}, which is not declared: add the Namespace manifest (or use "
                      "--cluster)", listeners)
    served = sum(1 for lr in listeners if lr.served)
    return report(parent, True, "Accepted", f"{parent} accepts it and serves {served} of its "
                                            f"{len(listeners)} listener(s)", listeners)


def explain_listenersets(
    objects: Iterable[tuple[Mapping[str, Any], str, int | None]], state: ClusterState
) -> list[ListenerSetReport]:
    """A report for every ListenerSet among (object, source, line) triples."""
    return [explain_listenerset(obj, state, source=src, line=line) for obj, src, line in objects
            if obj.get("kind") == "ListenerSet" and str(obj.get("apiVersion") or "").startswith(gw.GROUP + "/")]


# ----------------------------------------------------------------------------- text
def _mark(value: bool | None) -> str:
    return {True: "yes", False: "NO", None: "unknown"}[value]


def render_text(reports: Iterable[RouteReport]) -> str:
    lines: list[str] = []
    for r in reports:
        where = f"{r.source}:{r.line}" if r.line is not None else r.source
        head = f"{r.kind} {r.namespace}/{r.name} ({where})"
        if r.error:
            lines += [head, f"  cannot be read: {r.error}", ""]
            continue
        lines.append(f"{head}: {r.headline}, references {'resolved' if r.refs_resolved else 'NOT permitted'}")
        if not r.parents:
            lines.append("  no parentRefs: the route attaches to nothing")
        for p in r.parents:
            lines.append(f"  parentRef {p.ref} ({p.field}): {p.reason}: {p.message}")
            for lr in p.listeners:
                host = lr.hostname or "*"
                port = f":{lr.port}" if lr.port is not None else ""
                status = "attaches" if lr.attaches else ("not selected" if not lr.selected else "refuses")
                lines.append(f"    listener {lr.name} ({lr.protocol}{port} {host}) of {lr.owner}: {status}")
                if lr.selected:
                    lines.append(f"      namespaces: {_mark(lr.namespace_allowed)} - admits {lr.namespaces}")
                    lines.append(f"      kinds: {_mark(lr.kind_allowed)} - accepts {', '.join(lr.kinds) or 'none'}")
                    lines.append(f"      hostnames: {', '.join(lr.hostnames) or 'none intersect'}")
                for why in lr.why_not:
                    if not lr.selected or not why.startswith("not selected"):
                        lines.append(f"      {why}")
            if p.hostnames:
                lines.append(f"    serves: {', '.join(p.hostnames)}")
            if p.effective:
                why = {"listener": " (the listener's: the route lists no hostnames)",
                       "route": " (the route's own: the parent is not in the view, so its listeners are unknown)"}
                lines.append(f"    effective hostnames on {p.gateway}: {', '.join(p.effective)}"
                             f"{why.get(p.effective_from, '')}")
        for b in r.backends:
            verdict = "ok" if b.permitted else "NOT PERMITTED"
            lines.append(f"  backendRef {b.ref} ({b.field}): {verdict}: {b.message}")
        lines.extend(f"  {note.source}: {note.text}" for note in r.policy)
        lines.append("")
    if not lines:
        return "no routes found\n"
    return "\n".join(lines).rstrip("\n") + "\n"


def render_listenersets_text(reports: Iterable[ListenerSetReport]) -> str:
    lines: list[str] = []
    for r in reports:
        where = f"{r.source}:{r.line}" if r.line is not None else r.source
        head = f"ListenerSet {r.namespace}/{r.name} ({where})"
        if r.error:
            lines += [head, f"  cannot be read: {r.error}", ""]
            continue
        verdict = {True: "accepted", False: "NOT accepted", None: "acceptance unknown"}[r.accepted]
        lines.append(f"{head}: {verdict} by {r.gateway or 'no Gateway'}: {r.reason}: {r.message}")
        for lr in r.listeners:
            host = lr.hostname or "*"
            port = f":{lr.port}" if lr.port is not None else ""
            status = {True: "served", False: "NOT served", None: "may not be served"}[lr.served]
            lines.append(f"  listener {lr.name} ({lr.protocol}{port} {host}): {status}, route kinds "
                         f"{', '.join(lr.kinds) or 'none'}")
            lines.extend(f"    {why}" for why in lr.why)
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n" if lines else ""
