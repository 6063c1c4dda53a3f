"""Rules on route hostnames: required, allowed per namespace, owned by one namespace."""

from __future__ import annotations

from collections.abc import Iterator

from .. import gatewayapi as gw
from ..decision import Violation
from ..policy.placeholders import describe_all, resolve_all
from .attachment import parent_listeners
from .context import RuleContext
from .ownership import claim_order, claimed_before, overlapping_routes
from .placeholders import namespace_facts, unknown_namespace


def _governed_gateways(ctx: RuleContext, route: gw.Route) -> list[gw.Gateway]:
    """The Gateways the route names that the policy governs (three rules ask; found once)."""
    key = ("governed", id(ctx.policy), id(route))
    found = ctx.memo.get(key)
    if found is not None:
        return found
    out: list[gw.Gateway] = []
    for ref in route.parent_refs:
        gateway, _, _ = parent_listeners(ctx, ref)
        if gateway is not None and ctx.governs(gateway) and gateway not in out:
            out.append(gateway)
    ctx.memo[key] = out
    return out


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
    mine = [a for a in allowances if a.namespaces.contains(route.namespace, labels)]
    resolved = resolve_all((p for a in mine for p in a.patterns), namespace_facts(ctx, route.namespace))
    for i, hostname in enumerate(route.hostnames):
        if not any(r.permits(hostname) for r in resolved):
            if any(r.unknown for r in resolved):
                yield unknown_namespace(ctx, route.namespace, f"hostname {hostname}", field=f"spec.hostnames[{i}]")
                continue
            patterns = [r.pattern for r in resolved if r.pattern]
            allowed = describe_all(resolved) or "none"
            yield ctx.violation(
                "hostnames/HostnameNotAllowed",
                f"hostname {hostname} is not allowed for namespace {route.namespace} (allowed: {allowed})",
                field=f"spec.hostnames[{i}]",
                fix=(f"use a hostname matching {allowed}" if patterns else
                     f"ask the platform team to allow hostnames for namespace {route.namespace} in TenancyPolicy {ctx.policy.name}"),
            )


def route_hostnames_are_unclaimed(ctx: RuleContext, route: gw.Route, old: gw.Route | None) -> Iterator[Violation]:
    """A hostname belongs to the namespace that claimed it first, on the Gateways they share.

    Only new claims are judged: a hostname the route already had (UPDATE) stays, so an
    update never fails because of a conflict that predates it (the audit reports those).
    A hostname an UPDATE adds conflicts with every other claimant, older or newer: the
    spec gives a contested name to the *oldest* route, so an old route adding a name a
    newer one serves would take it over. A CREATE conflicts with the routes that claimed
    before it; that is every existing route at admission (the apiserver has just set
    the new route's creationTimestamp), and in ``routewarden check --cluster`` it keeps a
    route already in the cluster from being refused because of a newcomer in the commit.
    """
    if not ctx.policy.hostnames_unique or not route.hostnames:
        return
    gateways = {g.key for g in _governed_gateways(ctx, route)}
    if not gateways:
        return
    previous = set(old.hostnames) if old is not None else set()
    for i, hostname in enumerate(route.hostnames):
        if hostname in previous:
            continue
        claimants = {
            (other.kind, other.namespace, other.name): other
            for other in overlapping_routes(ctx.state, hostname)
            if other.namespace != route.namespace and gateways.intersection(r.gateway_key for r in other.parent_refs)
        }.values()
        first = {id(o): True if old is not None else claimed_before(ctx.state, o, route) for o in claimants}
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
        fix="check against what already exists (routewarden check --baseline <the target branch>, or --cluster): "
            "then the route that is new is the one denied HostnameConflict",
    )
