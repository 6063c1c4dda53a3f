"""Rules on route hostnames: required, allowed per namespace, owned by one namespace."""

from __future__ import annotations

from collections.abc import Iterator

from .. import gatewayapi as gw
from ..decision import Mode, Violation
from ..policy.placeholders import Resolved, describe_all, resolve_all
from .attachment import parent_listeners
from .context import RuleContext
from .ownership import Claim, claim_order, earlier_rivals, first_claimant, route_claims
from .placeholders import namespace_facts

NAMESPACES = frozenset({"Namespace"})


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


def allowed_patterns(ctx: RuleContext, namespace: str) -> tuple[tuple[Resolved, ...], tuple[Resolved, ...]]:
    """The ``hostnames.allowed`` patterns for ``namespace``, placeholders resolved: those of
    entries that select it, and those of entries only its unknown labels could decide.
    Kept per policy and namespace until a Namespace changes (they read nothing else)."""
    policy = ctx.policy
    return ctx.state.derived(("allowed-patterns", id(policy), namespace), lambda: _allowed_patterns(ctx, namespace),
                             reads=NAMESPACES, anchor=policy)


def _allowed_patterns(ctx: RuleContext, namespace: str) -> tuple[tuple[Resolved, ...], tuple[Resolved, ...]]:
    labels = ctx.labels(namespace)
    verdicts = [(a, a.namespaces.contains(namespace, labels)) for a in ctx.policy.hostnames_allowed]
    facts = namespace_facts(ctx, namespace)
    mine = resolve_all((p for a, selected in verdicts if selected for p in a.patterns), facts)
    maybe = resolve_all((p for a, selected in verdicts if selected is None for p in a.patterns), facts)
    return tuple(mine), tuple(maybe)


def hostname_allowed(mine: tuple[Resolved, ...], maybe: tuple[Resolved, ...], hostname: str) -> bool | None:
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


def claims(ctx: RuleContext, route: gw.Route) -> tuple[Claim, ...]:
    """The route's claims (:func:`~webhook.rules.ownership.route_claims`), once per request."""
    key = ("claims", id(route))
    found = ctx.memo.get(key)
    if found is None:
        found = ctx.memo[key] = route_claims(ctx.state, route, attach=ctx.attachment)
    return found


def claim_governance(ctx: RuleContext, claim: Claim) -> bool | None:
    """Whether the policy governs the Gateway of a claim: True, False, or None when it may
    (the parent is not in the view and the policy selects Gateways by what only the
    Gateway itself could tell, or by labels the view lacks)."""
    kind, namespace, name = claim.gateway
    if not claim.pending:
        gateway = ctx.state.gateway(namespace, name)
        return ctx.governance(gateway) if gateway is not None else False
    ref = gw.ParentRef(gw.GROUP, kind, namespace, name)
    if not ctx.may_govern(ref):
        return False
    match = ctx.policy.match
    if match.everything:
        return True
    if kind == "Gateway" and ((namespace, name) in match.gateways or (None, name) in match.gateways
                              or (match.namespaces is not None
                                  and match.namespaces.contains(namespace, ctx.labels(namespace)) is True)):
        return True
    return None


def rivals(ctx: RuleContext, claim: Claim, *, added: bool, listeners: bool = True) -> tuple[list[Claim], list[Claim]]:
    """:func:`~webhook.rules.ownership.earlier_rivals`, once per request (every policy asks alike)."""
    key = ("rivals", id(claim.claimant), claim.gateway, claim.hostname, claim.pending, added, listeners)
    found = ctx.memo.get(key)
    if found is None:
        found = ctx.memo[key] = earlier_rivals(ctx.state, claim, added=added, listeners=listeners, memo=ctx.memo)
    return found


def _hostname_field(route: gw.Route, hostname: str) -> str:
    for i, own in enumerate(route.hostnames):
        if gw.hostname_matches(own, hostname) or gw.hostname_matches(hostname, own):
            return f"spec.hostnames[{i}]"
    return "spec.hostnames"


def _where(claim: Claim, missing: str) -> str:
    """How a claim's hostname came to be, and on which parent, for a message."""
    text = f"hostname {claim.hostname}"
    route = claim.route
    if route is not None and not route.hostnames:
        text += " (the listener's: a route that lists no hostnames takes its listener's)"
    if claim.pending:
        text += f" on {claim.describe_gateway()} (which {missing}; both routes name it)"
    return text


def _unsure(ctx: RuleContext, mine: Claim, theirs: Claim, governed: bool | None) -> str:
    """Why a conflict may not be one, or "" when it is certain."""
    if governed is None and mine.pending:
        return (f"whether TenancyPolicy {ctx.policy.name} governs {mine.describe_gateway()} is unknown until it "
                "exists")
    if governed is None:
        return (f"whether TenancyPolicy {ctx.policy.name} governs {mine.describe_gateway()} depends on labels of "
                f"namespace {mine.gateway[1]} the view lacks")
    if not mine.certain or not theirs.certain:
        return "if both routes attach there (whether the listener admits them depends on namespace labels the " \
               "view lacks)"
    return ""


def _conflict(ctx: RuleContext, rule: str, message: str, *, unsure: str, **kw: str) -> Violation:
    if unsure:
        return ctx.violation(rule, f"{message} ({unsure})", at_most=Mode.WARN, **kw)
    return ctx.violation(rule, message, **kw)


def route_hostnames_are_unclaimed(ctx: RuleContext, route: gw.Route, old: gw.Route | None) -> Iterator[Violation]:
    """A hostname belongs to the namespace that claimed it first, on the Gateways they share.

    What a route claims are its effective hostnames on each Gateway it reaches, directly
    or through a ListenerSet: its hostnames intersected with the listener's, or the
    listener's when it lists none (:mod:`webhook.rules.ownership`). With
    ``hostnames.unique: path`` namespaces may share a hostname by paths that do not
    overlap (:func:`route_paths_are_unclaimed`).

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
    if not ctx.policy.hostnames_unique:
        return
    if ctx.policy.unique_paths:
        yield from route_paths_are_unclaimed(ctx, route, old)
        return
    kept = {(c.gateway, c.hostname) for c in claims(ctx, old)} if old is not None else set()
    found: dict[str, Violation] = {}
    for claim in claims(ctx, route):
        governed = claim_governance(ctx, claim)
        if governed is False or claim.hostname in found:
            continue
        added = old is not None and (claim.gateway, claim.hostname) not in kept
        earlier, unknown = rivals(ctx, claim, added=added)
        if not earlier:
            if unknown:
                found[claim.hostname] = _owner_unknown(ctx, claim.hostname, _hostname_field(route, claim.hostname),
                                                       unknown)
            continue
        field = _hostname_field(route, claim.hostname)
        owner = first_claimant(earlier)
        overlap = (owner.claimant.hostnames if owner.route is not None else (owner.hostname,))
        overlap = [h for h in overlap if gw.hostname_matches(h, claim.hostname) or gw.hostname_matches(claim.hostname, h)]
        found[claim.hostname] = _conflict(
            ctx, "hostnames/HostnameConflict",
            f"{_where(claim, ctx.state.missing)} is already served by namespace {owner.namespace} ({owner.describe()}, "
            f"hostname {', '.join(overlap) or owner.hostname})",
            unsure=_unsure(ctx, claim, owner, governed),
            field=field,
            subject=claim.hostname,
            fix=f"choose another hostname, or agree with the owners of namespace {owner.namespace} to move it",
        )
    yield from found.values()


def route_paths_are_unclaimed(ctx: RuleContext, route: gw.Route, old: gw.Route | None) -> Iterator[Violation]:
    """With ``hostnames.unique: path``: namespaces share a hostname only by paths that do not overlap.

    A path match of the route conflicts with an overlapping path match another namespace
    serves on the same hostname and Gateway (PathPrefix ``/store`` overlaps
    ``/store/cart`` and ``Exact /store``, never ``/storefront``); the first claimant of a
    path owns it. A ``RegularExpression`` path is implementation-specific: an overlap
    with it is possible, never certain, and only warns. A route without path matches,
    and a TLSRoute, takes every path of its hostnames. On UPDATE a path the route already
    had on a hostname conflicts with earlier claimants only.
    """
    kept = {(c.gateway, c.hostname, p.type, p.value) for c in claims(ctx, old) for p in c.paths} if old else set()
    found: dict[str, Violation] = {}
    for claim in claims(ctx, route):
        governed = claim_governance(ctx, claim)
        if governed is False:
            continue
        found_rivals: dict[bool, tuple[list[Claim], list[Claim]]] = {}
        for path in claim.paths:
            subject = f"{claim.hostname} {path.describe()}"
            if subject in found:
                continue
            added = old is not None and (claim.gateway, claim.hostname, path.type, path.value) not in kept
            if added not in found_rivals:
                found_rivals[added] = rivals(ctx, claim, added=added, listeners=False)
            earlier, unknown = found_rivals[added]
            finding = _path_finding(ctx, claim, path, earlier, unknown, governed)
            if finding is not None:
                found[subject] = finding
    yield from found.values()


def _overlapping(path: gw.PathMatch, others: list[Claim]) -> tuple[list[tuple[Claim, gw.PathMatch]], list[tuple[Claim, gw.PathMatch]]]:
    """(certain overlaps, possible overlaps) of ``path`` with the paths of ``others``."""
    sure: list[tuple[Claim, gw.PathMatch]] = []
    maybe: list[tuple[Claim, gw.PathMatch]] = []
    for other in others:
        for theirs in other.paths:
            verdict = gw.paths_overlap(path, theirs)
            if verdict:
                sure.append((other, theirs))
            elif verdict is None:
                maybe.append((other, theirs))
    return sure, maybe


def _path_finding(ctx: RuleContext, claim: Claim, path: gw.PathMatch, earlier: list[Claim], unknown: list[Claim],
                  governed: bool | None) -> Violation | None:
    subject = f"{claim.hostname} {path.describe()}"
    sure, maybe = _overlapping(path, earlier)
    fix = "serve paths the other namespace does not, or agree with its owners to move them"
    what = "the whole host" if path == gw.paths.WHOLE_HOST else f"path {path.describe()}"
    if sure:
        owner, theirs = min(sure, key=lambda pair: claim_order(pair[0].claimant))
        return _conflict(
            ctx, "hostnames/PathConflict",
            f"{what} on {_where(claim, ctx.state.missing)} overlaps {theirs.describe()}, which namespace {owner.namespace} already "
            f"serves there ({owner.describe()})",
            unsure=_unsure(ctx, claim, owner, governed), field=path.field, subject=subject, fix=fix)
    if maybe:
        owner, theirs = min(maybe, key=lambda pair: claim_order(pair[0].claimant))
        return ctx.violation(
            "hostnames/PathConflict",
            f"{what} on {_where(claim, ctx.state.missing)} may overlap {theirs.describe()}, which namespace {owner.namespace} already "
            f"serves there ({owner.describe()}): a RegularExpression (or a gRPC method without service) is "
            "implementation-specific, so whether they overlap is for the implementation to say",
            at_most=Mode.WARN, field=path.field, subject=subject,
            fix="use Exact or PathPrefix paths, which routewarden can compare, or " + fix)
    tied, _ = _overlapping(path, unknown)
    if tied:
        return _owner_unknown(ctx, f"{claim.hostname} ({what})", path.field, [c for c, _ in tied])
    return None


def _owner_unknown(ctx: RuleContext, hostname: str, field: str, others: list[Claim]) -> Violation:
    """Offline, a claim no date orders: a warning on both claimants, naming each other."""
    names = "; ".join(dict.fromkeys(f"namespace {o.namespace} ({o.describe()})"
                                    for o in sorted(others, key=lambda c: claim_order(c.claimant))))
    return ctx.violation(
        "hostnames/HostnameOwnerUnknown",
        f"hostname {hostname} is also claimed by {names}; ownership cannot be decided offline: neither claimant "
        "carries a creationTimestamp, so which one claimed it first is unknown",
        field=field,
        subject=hostname,
        fix="check against what already exists (routewarden check --baseline <the target branch>, or --cluster): "
            "then the claim that is new is the one denied HostnameConflict",
    )
