"""An HTTPRoute and a GRPCRoute cannot share a listener's hostnames (``attachment/RouteKindConflict``).

The GRPCRoute spec (``spec.hostnames``): "If a Route (A) of type HTTPRoute or GRPCRoute
is attached to a Listener and that listener already has another Route (B) of the other
type attached and the intersection of the hostnames of A and B is non-empty, then the
implementation MUST accept exactly one of these two routes, determined by the following
criteria, in order: the oldest Route based on creation timestamp; the Route appearing
first in alphabetical order by "{namespace}/{name}". The rejected Route MUST raise an
'Accepted' condition with a status of 'False' in the corresponding RouteParentStatus."

The spec names no reason for that condition; controllers write ``Conflicted``, which is
the reason given here. It is a mirror rule: it applies in every namespace, the route's
own included, and denies only what the controller refuses:

* the route is the later of the two, for certain (offline, two undated routes are in no
  known order: a warning);
* the earlier route is itself accepted there (not refused in turn by an even older
  route of this route's kind: then which one the controller keeps is unclear, a warning);
* every listener the parentRef attaches to is taken (a refusal on some listeners of a
  parentRef, or on one parentRef while another attaches, warns: the route is served
  elsewhere);
* both routes are known to attach there (a namespace whose labels the view lacks warns).

A route that comes first (an UPDATE of an older route adding a hostname, or two routes
created in the same second) is accepted, and the other loses the listener: a warning
naming it.
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import gatewayapi as gw
from ..decision import Mode, Violation
from .context import RuleContext
from .hostnames import claims
from .ownership import (
    Claim,
    acceptance_order,
    claimed_before,
    hostnames_overlap,
    route_claims,
    same_listener_claims,
)

PAIRS = {"HTTPRoute": "GRPCRoute", "GRPCRoute": "HTTPRoute"}


def _accepted_first(ctx: RuleContext, first: Claim, second: Claim) -> bool | None:
    return claimed_before(ctx.state, first.claimant, second.claimant, acceptance_order)


def _earliest(ctx: RuleContext, claim: Claim, kind: str) -> tuple[list[Claim], list[Claim], list[Claim]]:
    """(earlier, unordered, later) claims of ``kind`` routes on the claim's listener that
    intersect it (once per request: every policy asks alike)."""
    key = ("kind-rivals", id(claim), kind)
    found = ctx.memo.get(key)
    if found is None:
        found = ctx.memo[key] = _order(ctx, claim, kind)
    return found


def _order(ctx: RuleContext, claim: Claim, kind: str) -> tuple[list[Claim], list[Claim], list[Claim]]:
    earlier: list[Claim] = []
    unknown: list[Claim] = []
    later: list[Claim] = []
    for other in same_listener_claims(ctx.state, claim, kind, ctx.memo):
        first = _accepted_first(ctx, other, claim)
        (earlier if first else unknown if first is None else later).append(other)
    return earlier, unknown, later


def _kept(ctx: RuleContext, rival: Claim, kind: str) -> bool:
    """Whether the controller keeps ``rival`` on its listener: no route of ``kind`` (the
    newcomer's) comes before it there."""
    earlier, unknown, _ = _earliest(ctx, rival, kind)
    return not earlier and not unknown


def _governed_parents(ctx: RuleContext, route: gw.Route) -> dict[str, list[Claim]]:
    """The route's claims on Gateways the policy governs, by parentRef field."""
    out: dict[str, list[Claim]] = {}
    for claim in claims(ctx, route):
        if claim.pending or claim.ref is None:
            continue
        gateway = ctx.state.gateway(*claim.gateway[1:])
        if gateway is not None and ctx.governs(gateway):
            out.setdefault(claim.ref.field, []).append(claim)
    return out


def route_kinds_share_no_listener(ctx: RuleContext, route: gw.Route) -> Iterator[Violation]:
    """An HTTPRoute and a GRPCRoute with intersecting hostnames on one listener: only the first is accepted."""
    other_kind = PAIRS.get(route.kind)
    if other_kind is None or not ctx.policy.mirror_listeners or not ctx.state.count(other_kind):
        return  # no route of the other kind anywhere in the view: nothing to share a listener with
    parents = _governed_parents(ctx, route)
    refused: dict[str, Violation] = {}
    served: set[str] = set()
    notes: list[Violation] = []
    for field, parent_claims in parents.items():
        listeners: dict[tuple[str, str, str, str], list[Claim]] = {}
        for claim in parent_claims:
            assert claim.listener is not None
            listeners.setdefault(claim.listener, []).append(claim)
        taken: list[tuple[Claim, Claim, bool]] = []  # (claim, earlier rival, certain)
        for listener_claims in listeners.values():
            finding = _listener_verdict(ctx, listener_claims, other_kind, notes)
            if finding is None:
                if any(c.certain for c in listener_claims):
                    served.add(field)
            else:
                taken.append(finding)
        if taken and len(taken) == len(listeners):
            refused[field] = _violation(ctx, route, taken, every=True)
        elif taken:
            notes.append(_violation(ctx, route, taken, every=False))
    for field, violation in refused.items():
        if violation.mode is Mode.ENFORCE and (served - {field}) and ctx.policy.partial_attachment == "warn":
            where = ", ".join(sorted(served - {field}))
            violation = violation.softened(f"the route attaches at {where}, so the controller accepts it there; "
                                           "attachment.partialAttachment: warn")
        yield violation
    yield from notes


def _listener_verdict(
    ctx: RuleContext, listener_claims: list[Claim], other_kind: str, notes: list[Violation]
) -> tuple[Claim, Claim, bool] | None:
    """Whether a route of the other kind takes this listener: (claim, rival, certain), or None."""
    unsure: tuple[Claim, Claim, bool] | None = None
    for claim in listener_claims:
        earlier, unknown, later = _earliest(ctx, claim, other_kind)
        for rival in sorted(earlier, key=lambda c: acceptance_order(c.claimant)):
            certain = claim.certain and rival.certain and _kept(ctx, rival, claim.claimant.kind)
            if certain:
                return claim, rival, True
            unsure = unsure or (claim, rival, False)
        if unknown and unsure is None:
            unsure = (claim, unknown[0], False)
        for rival in later:
            if not _displaced_already(ctx, claim, rival):
                notes.append(_displaces(ctx, claim, rival))
    return unsure


def _displaced_already(ctx: RuleContext, claim: Claim, rival: Claim) -> bool:
    """Whether the route as the view holds it already took the listener from ``rival``
    (an UPDATE that keeps the claim, or the audit): then nothing changes for it."""
    stored = ctx.state.route(*claim.claimant.key) if claim.route is not None else None
    return stored is not None and any(
        c.listener == claim.listener and hostnames_overlap(c.hostname, rival.hostname)
        for c in route_claims(ctx.state, stored))


def _listener_name(claim: Claim) -> str:
    kind, namespace, name, listener = claim.listener or ("", "", "", "")
    return f"listener {listener!r} of {kind} {namespace}/{name}"


def _violation(ctx: RuleContext, route: gw.Route, taken: list[tuple[Claim, Claim, bool]], *, every: bool) -> Violation:
    claim = taken[0][0]
    ref = claim.ref
    assert ref is not None
    details = "; ".join(
        f"{_listener_name(mine)} already has {rival.describe()} (hostname {rival.hostname}), "
        + ("which comes first (older, or created in the same second and first by namespace/name)" if certain else
           "and which one the controller keeps is unknown (" + _why_unknown(ctx, mine, rival) + ")")
        for mine, rival, certain in taken
    )
    kind = PAIRS[route.kind]
    message = (f"{ref.describe()}: an HTTPRoute and a GRPCRoute whose hostnames intersect cannot share a listener; "
               f"the controller accepts only the first and sets Accepted=False on the other: {details}")
    if not every:
        message += "; the route is still served on the parentRef's other listeners"
    certain = every and all(c for _, _, c in taken)
    return ctx.violation(
        "attachment/RouteKindConflict", message, reason="Conflicted", field=ref.field,
        subject=f"{ref.subject} {kind}", at_most=None if certain else Mode.WARN,
        fix=f"serve hostnames the {kind} does not, attach to another listener, or route this host's traffic with "
            f"one kind (all {route.kind} or all {kind})",
    )


def _why_unknown(ctx: RuleContext, mine: Claim, rival: Claim) -> str:
    if _accepted_first(ctx, rival, mine) is None:
        return "neither route carries a creationTimestamp, so which is older is unknown offline"
    if not (mine.certain and rival.certain):
        return "whether the listener admits both depends on namespace labels the view lacks"
    return f"{rival.describe()} may itself be refused there in favour of an older {mine.claimant.kind}"


def _displaces(ctx: RuleContext, claim: Claim, rival: Claim) -> Violation:
    ref = claim.ref
    assert ref is not None
    return ctx.violation(
        "attachment/RouteKindConflict",
        f"{ref.describe()}: on {_listener_name(claim)} this route comes before {rival.describe()} (hostname "
        f"{rival.hostname}), so the controller accepts this one and stops accepting {rival.describe()} there",
        reason="Conflicted", field=ref.field, subject=f"{ref.subject} displaces {rival.describe()}",
        at_most=Mode.WARN,
        fix=f"make sure the owners of {rival.describe()} expect it, or serve hostnames it does not",
    )
