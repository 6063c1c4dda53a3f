"""Rules on route hostnames: required, allowed per namespace, owned by one namespace."""

from __future__ import annotations

from collections.abc import Iterator

from .. import gatewayapi as gw
from ..decision import Violation
from .attachment import parent_listeners
from .context import RuleContext
from .ownership import claim_order, overlapping_routes


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
    labels = ctx.labels(route.namespace)
    verdicts = [(a, a.namespaces.contains(route.namespace, labels)) for a in allowances]
    mine = [a for a, selected in verdicts if selected]
    maybe = [a for a, selected in verdicts if selected is None]  # only the namespace's unknown labels tell
    for i, hostname in enumerate(route.hostnames):
        if any(a.permits(hostname) for a in mine):
            continue
        if any(a.permits(hostname) for a in maybe):
            yield ctx.namespace_unknown(route.namespace, f"whether hostname {hostname} is allowed for it "
                                        f"(TenancyPolicy {ctx.policy.name} hostnames.allowed)",
                                        field=f"spec.hostnames[{i}]", subject=hostname)
            continue
        patterns = sorted({p for a in mine for p in a.patterns})
        allowed = ", ".join(patterns) if patterns else "none"
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
        rivals = [
            other
            for other in overlapping_routes(ctx.state, hostname)
            if other.namespace != route.namespace and not other.gateway_keys.isdisjoint(gateways)
            and (added or claim_order(other) < claim_order(route))
        ]
        if not rivals:
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
