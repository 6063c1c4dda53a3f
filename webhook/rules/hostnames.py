"""Rules on route hostnames: required, allowed per namespace, owned by one namespace."""

from __future__ import annotations

from collections.abc import Iterator

from .. import gatewayapi as gw
from ..decision import Violation
from ..policy.placeholders import Resolved, describe_all, resolve_all
from .attachment import parent_listeners
from .context import RuleContext
from .ownership import claim_order, claimed_before, overlapping_routes
from .placeholders import namespace_facts


def _governed_gateways(ctx: RuleContext, route: gw.Route) -> list[gw.Gateway]:
    """The Gateways the route names that the policy governs and where its hostnames
    matter (three rules ask; found once).

    Hostnames matter on HTTP, HTTPS and TLS listeners only: a parentRef whose listeners
    all have other protocols (an Istio waypoint's HBONE, TCP, UDP) is left out.
    """
    key = ("governed", id(ctx.policy), id(route))
    found = ctx.memo.get(key)
    if found is not None:
        return found
    out: list[gw.Gateway] = []
    for ref in route.parent_refs:
        gateway, listeners, _ = parent_listeners(ctx, ref)
        if gateway is None or not ctx.governs(gateway) or gateway in out:
            continue
        if _hostnames_matter(gw.listeners_for_ref(listeners, ref)):
            out.append(gateway)
    ctx.memo[key] = out
    return out


def _hostnames_matter(selected: tuple[gw.Listener, ...]) -> bool:
    """Whether a parentRef selecting these listeners matches on hostnames (or selects none:
    then attachment reports it, and the hostname rules still hold for it)."""
    for listener in selected:
        if listener.protocol in gw.HOSTNAME_PROTOCOLS:
            return True
    return not selected


def allowed_patterns(ctx: RuleContext, namespace: str) -> tuple[list[Resolved], list[Resolved]]:
    """The ``hostnames.allowed`` patterns for ``namespace``, placeholders resolved: those of
    entries that select it, and those of entries only its unknown labels could decide."""
    labels = ctx.labels(namespace)
    verdicts = [(a, a.namespaces.contains(namespace, labels)) for a in ctx.policy.hostnames_allowed]
    facts = namespace_facts(ctx, namespace)
    mine = resolve_all((p for a, selected in verdicts if selected for p in a.patterns), facts)
    maybe = resolve_all((p for a, selected in verdicts if selected is None for p in a.patterns), facts)
    return mine, maybe


def hostname_allowed(mine: list[Resolved], maybe: list[Resolved], hostname: str) -> bool | None:
    """Whether a pattern of :func:`allowed_patterns` permits ``hostname``; None when only
    what the view does not know (a namespace's labels or annotations) could tell."""
    if any(r.permits(hostname) for r in mine):
        return True
    if any(r.unknown for r in mine) or any(r.unknown or r.permits(hostname) for r in maybe):
        return None
    return False


def route_names_hostnames(ctx: RuleContext, route: gw.Route) -> Iterator[Violation]:
    """A route on a governed Gateway lists hostnames instead of catching every name."""
    if not ctx.policy.hostnames_required or route.kind not in gw.HOSTNAME_ROUTE_KINDS or route.hostnames:
        return
    gateways = _governed_gateways(ctx, route)
    if gateways:
        names = ", ".join(g.describe() for g in gateways)
        yield ctx.violation(
            "hostnames/HostnameRequired",
            f"{route.kind} lists no hostnames, so it would catch every hostname of the listeners it attaches to on {names}",
            field="spec.hostnames",
            fix="list the hostnames this route serves in spec.hostnames",
        )


def route_hostnames_are_allowed(ctx: RuleContext, route: gw.Route) -> Iterator[Violation]:
    """Each hostname matches a pattern the policy allows for the route's namespace."""
    allowances = ctx.policy.hostnames_allowed
    if not allowances or not route.hostnames or not _governed_gateways(ctx, route):
        return
    mine, maybe = allowed_patterns(ctx, route.namespace)
    for i, hostname in enumerate(route.hostnames):
        verdict = hostname_allowed(mine, maybe, hostname)
        if verdict:
            continue
        if verdict is None:
            yield ctx.namespace_unknown(route.namespace, f"whether hostname {hostname} is allowed for it "
                                        f"(TenancyPolicy {ctx.policy.name} hostnames.allowed)",
                                        field=f"spec.hostnames[{i}]", subject=hostname)
            continue
        patterns = [r.pattern for r in mine if r.pattern]
        allowed = describe_all(mine) or "none"
        yield ctx.violation(
            "hostnames/HostnameNotAllowed",
            f"hostname {hostname} is not allowed for namespace {route.namespace} (allowed: {allowed})",
            field=f"spec.hostnames[{i}]",
            subject=hostname,
            fix=(f"use a hostname matching {allowed}" if patterns else
                 f"ask the platform team to allow hostnames for namespace {route.namespace} in TenancyPolicy {ctx.policy.name}"),
        )


def route_hostnames_are_unclaimed(ctx: RuleContext, route: gw.Route, old: gw.Route | None) -> Iterator[Violation]:
    """A hostname belongs to the namespace that claimed it first, on the Gateways they share.

    A route claims a hostname when it first lists it. A CREATE conflicts with the routes
    that claimed before it: every existing route at admission (the apiserver has just set
    the new route's creationTimestamp), and in ``routewarden check --cluster`` that keeps
    a route already in the cluster from being refused because of a newcomer in the commit.
    On UPDATE (``old`` is the object before it), a hostname the route already had was
    claimed when the route was created and conflicts with earlier claimants only; a
    hostname the UPDATE adds conflicts with every other claimant, older or newer (the
    spec gives a contested name to the oldest route, so an old route adding a name a
    newer one serves would take it over). A conflict the route already had before the
    UPDATE is not new, and the engine's ratcheting turns it into a warning.
    """
    if not ctx.policy.hostnames_unique or not route.hostnames:
        return
    gateways = {g.key for g in _governed_gateways(ctx, route)}
    if not gateways:
        return
    kept = set(old.hostnames) if old is not None else set()
    for i, hostname in enumerate(route.hostnames):
        added = old is not None and hostname not in kept
        claimants = {
            other.key: other
            for other in overlapping_routes(ctx.state, hostname)
            if other.namespace != route.namespace and not other.gateway_keys.isdisjoint(gateways)
        }.values()
        # A hostname an UPDATE adds conflicts with every claimant; one the route had, or a
        # CREATE's, with those that claimed before it (None: offline, nobody can tell).
        first = {id(o): True if added else claimed_before(ctx.state, o, route) for o in claimants}
        rivals = [other for other in claimants if first[id(other)]]
        if not rivals:
            yield from _owner_unknown(ctx, hostname, i, [o for o in claimants if first[id(o)] is None])
            continue
        owner = min(rivals, key=claim_order)
        overlap = [h for h in owner.hostnames if gw.hostname_matches(h, hostname) or gw.hostname_matches(hostname, h)]
        yield ctx.violation(
            "hostnames/HostnameConflict",
            f"hostname {hostname} is already served by namespace {owner.namespace} ({owner.describe()}, "
            f"hostname {', '.join(overlap)})",
            field=f"spec.hostnames[{i}]",
            subject=hostname,
            fix=f"choose another hostname, or agree with the owners of namespace {owner.namespace} to move it",
        )


def _owner_unknown(ctx: RuleContext, hostname: str, index: int, others: list[gw.Route]) -> Iterator[Violation]:
    """Offline, a claim no date orders: a warning on both claimants, naming each other."""
    if not others:
        return
    names = "; ".join(f"namespace {o.namespace} ({o.describe()})" for o in sorted(others, key=claim_order))
    yield ctx.violation(
        "hostnames/HostnameOwnerUnknown",
        f"hostname {hostname} is also claimed by {names}; ownership cannot be decided offline: neither route "
        "carries a creationTimestamp, so which one claimed it first is unknown",
        field=f"spec.hostnames[{index}]",
        subject=hostname,
        fix="check against what already exists (routewarden check --baseline <the target branch>, or --cluster): "
            "then the route that is new is the one denied HostnameConflict",
    )
