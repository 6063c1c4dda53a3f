"""Changes that would break routes that already exist: say so, naming the routes.

A Gateway UPDATE that narrows ``allowedRoutes`` or drops a listener, a Gateway DELETE,
a ListenerSet UPDATE or DELETE, and a ReferenceGrant UPDATE or DELETE that stops
permitting a backendRef or a listener's certificate or CA reference are judged by
comparing what the routes, ListenerSets and listeners in the cluster view get before
and after the change.

A Gateway created after routes that name it gives them their listener hostnames at once,
and a Gateway UPDATE that changes its listeners moves the hostnames of the routes on
them: conflicts among those routes that the change brings are named (the later
claimants).

A Gateway's ListenerSets count too: a Gateway UPDATE of ``allowedListeners`` that stops
accepting a set detaches it and every route attached through it; a listener a Gateway
or an older ListenerSet adds can make a newer set's listener ``Conflicted``
(GEP-1713's precedence), which stops serving the routes on it.
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import gatewayapi as gw
from ..decision import Violation
from .context import RuleContext
from .listenersets import admits, merged
from .ownership import (
    EVERY_HOSTNAME,
    Claim,
    claim_order,
    claimed_before,
    first_claimant,
    hostnames_overlap,
    route_claims,
)

MAX_NAMED = 10


def _names(routes: list[str]) -> str:
    text = ", ".join(routes[:MAX_NAMED])
    if len(routes) > MAX_NAMED:
        text += f" and {len(routes) - MAX_NAMED} more"
    return text


def _accepted(ctx: RuleContext, route: gw.Route, ref: gw.ParentRef, gateway: gw.Gateway | None) -> bool:
    if gateway is None:
        return False
    verdict = gw.evaluate_attachment(
        route, ref, gateway.listeners, owner_namespace=gateway.namespace, namespace_labels=ctx.labels(route.namespace)
    )
    return verdict.reason is None


def _via_set(ctx: RuleContext, route: gw.Route, listener_set: gw.ListenerSet, view: gw.MergedListeners | None) -> bool:
    """Whether a route is accepted through ``listener_set`` given the merged listeners
    (``None``: the set is not merged into a Gateway at all)."""
    if view is None:
        return False
    usable = view.usable("ListenerSet", *listener_set.key)
    labels = ctx.labels(route.namespace)
    return any(
        gw.evaluate_attachment(route, ref, usable, owner_namespace=listener_set.namespace, namespace_labels=labels).reason
        is None
        for ref in route.parent_refs
        if ref.is_listenerset and ref.gateway_key == listener_set.key
    )


def _detached_through(
    ctx: RuleContext, listener_set: gw.ListenerSet, before: gw.MergedListeners, after: gw.MergedListeners | None
) -> list[str]:
    """Routes accepted through ``listener_set`` before a change and not after it, described."""
    return [
        f"{route.describe()} (through {listener_set.describe()})"
        for route in ctx.state.routes_attached_to_listenerset(*listener_set.key)
        if _via_set(ctx, route, listener_set, before) and not _via_set(ctx, route, listener_set, after)
    ]


def _routes_detached(ctx: RuleContext, what: str, detached: list[str], *, changed: bool, fix: str) -> Violation:
    return ctx.violation(
        "blastradius/RoutesDetached",
        f"{what} detaches {len(detached)} route(s) that are attached now: {_names(detached)}",
        field="spec.listeners" if changed else "",
        fix=fix,
    )


def _newly_conflicted(before: gw.MergedListeners, after: gw.MergedListeners, *, skip: tuple[str, str, str]) -> list[gw.ListenerState]:
    """Listeners of ListenerSets (other than ``skip``) Conflicted after a change and not before."""
    was = {(e.owner.key, e.listener.name) for e in before.entries if e.conflicted}
    return [
        e for e in after.entries
        if e.conflicted and e.owner.kind == "ListenerSet" and e.owner.key != skip and (e.owner.key, e.listener.name) not in was
    ]


def _conflicted_violation(ctx: RuleContext, what: str, states: list[gw.ListenerState]) -> Violation:
    names = [f"{s.describe()} (by {s.conflict.describe()})" for s in states if s.conflict is not None]
    return ctx.violation(
        "blastradius/ListenersConflicted",
        f"{what} makes {len(names)} listener(s) of other ListenerSets Conflicted, so they stop serving their "
        f"routes: {_names(names)}",
        field="spec.listeners",
        fix="use a port and hostname those listeners do not use, or agree with their owners first",
    )


def gateway_change_keeps_routes(ctx: RuleContext, old: gw.Gateway, new: gw.Gateway | None) -> Iterator[Violation]:
    """Routes and ListenerSets accepted by the Gateway before the change are still accepted after it."""
    if not ctx.governs(old):
        return
    what = "deleting" if new is None else "this change to"
    detached: list[str] = []
    for route in ctx.state.routes_attached_to(old.namespace, old.name):
        for ref in route.parent_refs:
            attached = ref.is_gateway and ref.gateway_key == old.key and _accepted(ctx, route, ref, old)
            if attached and not _accepted(ctx, route, ref, new):
                detached.append(route.describe())
                break
    before, after = merged(ctx, old), merged(ctx, new) if new is not None else None
    sets_detached: list[str] = []
    for listener_set in ctx.state.listenersets_for(*old.key):
        if admits(ctx, old, listener_set) is not True:
            continue
        kept = admits(ctx, new, listener_set) is not False
        if not kept:
            sets_detached.append(listener_set.describe())
        detached.extend(_detached_through(ctx, listener_set, before, after if kept else None))
    if detached:
        yield _routes_detached(ctx, f"{what} {old.describe()}", detached, changed=new is not None,
                               fix="move or update those routes first, or keep their listeners and allowedRoutes")
    if sets_detached:
        yield ctx.violation(
            "blastradius/ListenerSetsDetached",
            f"{what} {old.describe()} detaches {len(sets_detached)} ListenerSet(s) it accepts now, with every "
            f"listener in them: {_names(sets_detached)}",
            field="spec.allowedListeners" if new is not None else "",
            fix="keep spec.allowedListeners admitting their namespaces, or move those ListenerSets first",
        )
    if after is not None:
        displaced = _newly_conflicted(before, after, skip=("Gateway", *old.key))
        if displaced:
            yield _conflicted_violation(ctx, f"this change to {old.describe()}", displaced)


def listenerset_change_keeps_routes(
    ctx: RuleContext, old: gw.ListenerSet | None, new: gw.ListenerSet | None
) -> Iterator[Violation]:
    """Routes attached through the ListenerSet, and other sets' listeners, keep being served.

    ``old`` is None on CREATE: a new set created in the same second as an existing one
    may still come first by name and take a port from it.
    """
    base = old if old is not None else new
    gateway = ctx.state.gateway(*base.parent) if base is not None and base.parent else None
    if base is None or gateway is None or not ctx.governs(gateway):
        return
    what = "deleting" if new is None else "creating" if old is None else "this change to"
    before = merged(ctx, gateway, candidate=base, without=old is None)
    after = merged(ctx, gateway, candidate=base, without=True) if new is None else merged(ctx, gateway, candidate=new)
    kept = after if new is not None and admits(ctx, gateway, new) is not False else None
    detached = [
        route.describe()
        for route in ctx.state.routes_attached_to_listenerset(*base.key)
        if old is not None and _via_set(ctx, route, old, before) and not (new is not None and _via_set(ctx, route, new, kept))
    ]
    displaced = _newly_conflicted(before, after, skip=("ListenerSet", *base.key))
    owners = {e.owner.key for e in displaced}
    for other in ctx.state.listenersets_for(*gateway.key):
        if ("ListenerSet", *other.key) in owners:
            detached.extend(_detached_through(ctx, other, before, after))
    if detached:
        yield _routes_detached(ctx, f"{what} {base.describe()}", detached, changed=new is not None,
                               fix="move or update those routes first, or keep the listeners they attach to")
    if displaced:
        yield _conflicted_violation(ctx, f"{what} {base.describe()}", displaced)


def _listener_refs(owner: gw.Gateway | gw.ListenerSet) -> Iterator[tuple[str, gw.ObjectRef]]:
    """(what holds it, reference) for every certificate and CA reference of a Gateway or ListenerSet."""
    for listener in owner.listeners:
        for ref in listener.certificate_refs:
            yield f"{owner.describe()} {listener.describe()}", ref
    if isinstance(owner, gw.Gateway):
        for ref in owner.other_refs:
            yield f"{owner.describe()} {ref.field}", ref


def _referrers(ctx: RuleContext, namespace: str) -> Iterator[tuple[str, str, str, gw.ObjectRef]]:
    """(from kind, from namespace, what, reference) for every reference into ``namespace``:
    route backendRefs, and listener certificate and CA references of governed Gateways and ListenerSets."""
    for route in ctx.state.routes_referencing_namespace(namespace):
        for ref in route.backend_refs:
            if ref.namespace == namespace:
                yield route.kind, route.namespace, route.describe(), ref
    for gateway in ctx.state.gateways():
        if gateway.namespace != namespace and ctx.governs(gateway):
            for what, ref in _listener_refs(gateway):
                if ref.namespace == namespace:
                    yield "Gateway", gateway.namespace, what, ref
    for listener_set in ctx.state.listenersets():
        parent = ctx.state.gateway(*listener_set.parent) if listener_set.parent else None
        if listener_set.namespace != namespace and parent is not None and ctx.governs(parent):
            for what, ref in _listener_refs(listener_set):
                if ref.namespace == namespace:
                    yield "ListenerSet", listener_set.namespace, what, ref


def grant_change_keeps_references(
    ctx: RuleContext, old: gw.ReferenceGrant, new: gw.ReferenceGrant | None
) -> Iterator[Violation]:
    """References permitted by the grant before the change are still permitted after it."""
    namespace = old.meta.namespace
    others = [g for g in ctx.state.reference_grants(namespace) if g.meta.name != old.meta.name]
    before = others + [old]
    after = others + ([new] if new is not None else [])
    broken: list[str] = []
    for from_kind, from_namespace, holder, ref in _referrers(ctx, namespace):
        args = {"from_group": gw.GROUP, "from_kind": from_kind, "from_namespace": from_namespace, "to": ref}
        if gw.reference_permitted(before, **args) and not gw.reference_permitted(after, **args):
            broken.append(f"{holder} -> {ref.describe()}")
    if broken:
        what = "deleting" if new is None else "this change to"
        yield ctx.violation(
            "blastradius/RefsRevoked",
            f"{what} {old.describe()} revokes {len(broken)} reference(s) in use: {_names(broken)}",
            fix="update those routes and listeners first, or keep the grant's from and to entries",
        )


def waiting_routes_do_not_conflict(ctx: RuleContext, gateway: gw.Gateway) -> Iterator[Violation]:
    """A Gateway created after its routes (GitOps applies same-wave objects by name) gives
    them their effective hostnames at once: warn about the routes of different namespaces
    that now claim one hostname (or, with ``hostnames.unique: path``, overlapping paths),
    naming the later claimants. Before it existed they were compared only by the
    hostnames they list, and only among routes naming the same parent.

    Offline every route is judged against the Gateway it names, so its own findings say
    it; only a Gateway a change adds over its baseline (whose routes are not judged
    again) gets the warning."""
    if not ctx.policy.hostnames_unique or not ctx.governs(gateway):
        return
    if ctx.state.offline and ("Gateway", *gateway.key) not in ctx.state.added:
        return
    later = _later_claimants(ctx, gateway, _routes_on(ctx, gateway))
    if later:
        yield _claimed_first(
            ctx, "blastradius/WaitingRoutesConflict", later, f"creating {gateway.describe()}", "already waiting for it",
            fix="agree which namespace keeps each name and remove it from the other routes (they were applied before "
                "the Gateway, so admission could not compare their listener hostnames)")


def gateway_change_keeps_hostnames_apart(ctx: RuleContext, old: gw.Gateway, new: gw.Gateway) -> Iterator[Violation]:
    """A Gateway UPDATE that changes its listeners moves the effective hostnames of the
    routes on them: a route that lists no hostnames takes its listener's, and a listener's
    hostname narrows what a route's own give. Warn about the routes of different namespaces
    that claim one hostname (or, with ``hostnames.unique: path``, overlapping paths) after
    the change and did not before, naming the later claimants. Conflicts the routes had
    already are not repeated."""
    if not ctx.policy.hostnames_unique or old.listeners == new.listeners or not ctx.governs(new):
        return
    routes = _routes_on(ctx, new)
    before = _later_claimants(ctx, old, routes)
    moved = {key: text for key, text in _later_claimants(ctx, new, routes).items() if key not in before}
    if moved:
        yield _claimed_first(
            ctx, "blastradius/HostnamesMoved", moved, f"this change to the listeners of {new.describe()}", "on it",
            note=" (a route that lists no hostnames takes its listener's)",
            fix="keep the listener hostnames those routes are served on, or agree which namespace keeps each name and "
                "move the other routes first")


def _routes_on(ctx: RuleContext, gateway: gw.Gateway) -> list[gw.Route]:
    """The routes in the view that name ``gateway``, directly or through one of its ListenerSets."""
    routes = {r.key: r for r in ctx.state.routes_attached_to(*gateway.key)}
    for listener_set in ctx.state.listenersets_for(*gateway.key):
        routes.update((r.key, r) for r in ctx.state.routes_attached_to_listenerset(*listener_set.key))
    return [routes[key] for key in sorted(routes)]


def _later_claimants(ctx: RuleContext, gateway: gw.Gateway, routes: list[gw.Route]) -> dict[tuple[str, str], str]:
    """(route, hostname) -> the later claimant described, for the routes of different
    namespaces that conflict on ``gateway`` as it is given (it stands in for the view's)."""
    claims = [
        c for route in routes
        for c in route_claims(ctx.state, route, gateways={gateway.key: gateway})
        if not c.pending and c.gateway[1:] == gateway.key and c.hostname != EVERY_HOSTNAME
    ]
    later: dict[tuple[str, str], str] = {}
    for claim, owner, known in _conflicts_among(ctx, claims):
        what = claim.claimant.describe()
        key = (what, claim.hostname)
        if key in later:
            continue
        if known:
            later[key] = (f"{what} (hostname {claim.hostname}, claimed first by namespace {owner.namespace}: "
                          f"{owner.claimant.describe()})")
        else:
            later[key] = (f"{what} and {owner.claimant.describe()} (hostname {claim.hostname}; which claimed it "
                          "first is unknown offline: neither is dated)")
    return later


def _claimed_first(ctx: RuleContext, rule: str, later: dict[tuple[str, str], str], cause: str, routes: str, *,
                   fix: str, note: str = "") -> Violation:
    """One finding naming the later claimants of :func:`_later_claimants`, a route each
    (its first conflicting hostname): ``cause`` gives the ``routes`` a name claimed first."""
    first: dict[str, str] = {}
    for (what, _), text in later.items():
        first.setdefault(what, text)
    unique = "path" if ctx.policy.unique_paths else "hostname"
    return ctx.violation(
        rule,
        f"{cause} gives {len(first)} route(s) {routes} a {unique} another namespace claimed first{note}; the later "
        f"claimants: {_names(list(first.values()))}",
        field="spec.listeners", reason="PathConflict" if ctx.policy.unique_paths else "HostnameConflict", fix=fix,
    )


def _conflicts_among(ctx: RuleContext, claims: list[Claim]) -> Iterator[tuple[Claim, Claim, bool]]:
    """(later claim, earliest earlier claim, order known) for claims of different namespaces
    that overlap: by hostname, and with ``unique: path`` by path too. Indexed by name."""
    by_host: dict[str, list[Claim]] = {}
    under: dict[str, list[Claim]] = {}
    for claim in claims:
        by_host.setdefault(claim.hostname, []).append(claim)
        labels = claim.hostname.split(".")
        for i in range(1, len(labels)):
            under.setdefault(".".join(labels[i:]), []).append(claim)
    for claim in claims:
        labels = claim.hostname.split(".")
        start = 1 if gw.is_wildcard(claim.hostname) else 0
        candidates = list(by_host.get(claim.hostname, ()))
        for i in range(start + 1, len(labels)):
            candidates += by_host.get("*." + ".".join(labels[i:]), ())
        if gw.is_wildcard(claim.hostname):
            candidates += under.get(claim.hostname[2:], ())
        earlier: list[Claim] = []
        unknown: list[Claim] = []
        for other in candidates:
            if other.namespace == claim.namespace or not hostnames_overlap(other.hostname, claim.hostname):
                continue
            if ctx.policy.unique_paths and not any(
                    gw.paths_overlap(p, q) for p in claim.paths for q in other.paths):
                continue
            first = claimed_before(ctx.state, other.claimant, claim.claimant)
            (earlier if first else unknown if first is None else []).append(other)
        if earlier:
            yield claim, first_claimant(earlier), True
        elif unknown and claim_order(claim.claimant) > claim_order(unknown[0].claimant):
            yield claim, first_claimant(unknown), False
