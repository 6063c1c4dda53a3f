"""Rules on ListenerSets and on listeners: a set's listeners are its Gateway's listeners.

For a ListenerSet on a governed Gateway:

* the listener guardrails (``allowAllNamespaces``, ``listenerDomains``,
  ``requireCertificateRefs``) judge its listeners with the set's namespace as owner,
  exactly as they would on a Gateway in that namespace;
* ``hostnames.allowed`` and ``hostnames.unique`` judge its listener hostnames as claims
  of the set's namespace (a set in the Gateway's own namespace is the platform's, like
  the Gateway's listeners, and claims nothing);
* the mirror rules predict the listener conditions the controller writes:
  ``listeners/Conflicted`` (GEP-1713's merged list and precedence, see
  :mod:`webhook.gatewayapi.conflicts`), ``listeners/InvalidRouteKinds``, and
  ``listeners/ListenersNotValid`` when no listener of the set would be served.

Findings that touch some listeners of a set (or Gateway) warn: the rest of it is served.
A finding that leaves it with no listener to serve is ``ListenersNotValid``: it denies
when every listener is Conflicted (the controller refuses the set), and warns when route
kinds leave the listeners serving nothing (the controller accepts the set, with
``ResolvedRefs=False`` on the listeners), unless the policy names the rule.
What is only possible (an unknown creation order, an implementation's choice) always
only warns. On UPDATE, a finding the object already had is a warning.

A route whose only listeners on a parent are Conflicted gets ``listeners/Conflicted`` as
a warning: GEP-1713 lets a route attach to a Conflicted listener, and its traffic flows
once the conflict is resolved.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace

from .. import gatewayapi as gw
from ..decision import Mode, Violation
from ..policy.placeholders import describe_all
from ..state.store import LISTENER_SOURCES
from .context import RuleContext
from .gateways import LISTENER_GUARDRAILS
from .hostnames import allowed_patterns, hostname_allowed
from .ownership import Claim, rival_claims

Owner = gw.Gateway | gw.ListenerSet
GATEWAYS = frozenset({"Gateway"})

# The findings on one listener that leave it serving no route.
_UNUSABLE = ("listeners/Conflicted", "listeners/InvalidRouteKinds")


# ----------------------------------------------------------------------------- the merged view
def merged(
    ctx: RuleContext, gateway: gw.Gateway, *, candidate: gw.ListenerSet | None = None, without: bool = False
) -> gw.MergedListeners:
    """The Gateway's merged listeners from the view, with ``candidate`` in place of the stored
    copy of that set (or, ``without``, with no copy of it at all).

    As the view holds them (the stored Gateway, no candidate or one equal to its stored
    copy) they are kept until the view changes: every route review through a ListenerSet
    needs them, and making them walks every set of the Gateway. Otherwise they are made
    once per request.
    """
    stored = ctx.state.gateway(*gateway.key)
    kept = ctx.state.listenerset(*candidate.key) if candidate is not None else None
    as_stored = candidate is None or (kept is None if without else kept == candidate)
    if as_stored and stored is not None and (gateway is stored or gateway == stored):
        return ctx.state.derived(
            ("merged-listeners", gateway.key),
            lambda: gw.merge_with(stored, ctx.state.listenersets_for(*stored.key), labels=ctx.labels),
            reads=LISTENER_SOURCES,
        )
    key = ("merged", id(gateway), id(candidate), without)
    found = ctx.memo.get(key)
    if found is None:
        found = ctx.memo[key] = gw.merge_with(
            gateway, ctx.state.listenersets_for(*gateway.key), labels=ctx.labels, candidate=candidate, without=without
        )
    return found


def admits(ctx: RuleContext, gateway: gw.Gateway | None, listener_set: gw.ListenerSet) -> bool | None:
    """Whether ``gateway`` (its ``allowedListeners``) accepts the set; None: labels unknown."""
    if gateway is None or listener_set.parent != gateway.key:
        return False
    return gw.gateway_admits_listenerset(
        gateway, namespace=listener_set.namespace, namespace_labels=ctx.labels(listener_set.namespace)
    )


def own_listeners(ctx: RuleContext, gateway: gw.Gateway) -> gw.MergedListeners:
    """The Gateway's own listeners merged among themselves (a ListenerSet cannot take
    them), kept for as long as the view holds that very Gateway."""
    if ctx.state.gateway(*gateway.key) is gateway:
        return ctx.state.derived(("own-listeners", gateway.key), lambda: gw.merge_listeners(gateway, ()),
                                 reads=GATEWAYS, anchor=gateway)
    return gw.merge_listeners(gateway, ())


def owner_kind(owner: Owner) -> str:
    return "Gateway" if isinstance(owner, gw.Gateway) else "ListenerSet"


def _at_most_warn(ctx: RuleContext, violation: Violation, *, unsure: bool = False) -> Violation:
    """A finding on part of an object warns, unless the policy names the rule in ``spec.rules``;
    one that is only possible always warns."""
    if violation.mode is Mode.ENFORCE and (unsure or violation.rule not in ctx.policy.rule_modes):
        return replace(violation, mode=Mode.WARN)
    return violation


def _ratcheted(violation: Violation) -> Violation:
    if violation.mode is not Mode.ENFORCE:
        return violation
    return replace(violation, mode=Mode.WARN, message=violation.message + " (already so before this change)")


# ----------------------------------------------------------------------------- listener conditions
def _precedence_words(state: gw.ListenerState) -> str:
    clash = state.conflict
    assert clash is not None
    if clash.owner.kind == "Gateway":
        return "the Gateway's own listeners come first"
    if clash.owner == state.owner:
        return "it comes first in the list"
    if clash.owner.created and clash.owner.created != state.owner.created:
        return f"that ListenerSet is older ({clash.owner.created})"
    return "that ListenerSet was created at the same time and sorts first by namespace/name"


def _conflicted(ctx: RuleContext, state: gw.ListenerState) -> Violation:
    clash = state.conflict
    assert clash is not None
    fix = "use another port" if clash.reason == "ProtocolConflict" else "use another port or hostname"
    return ctx.violation(
        "listeners/Conflicted",
        f"{state.listener.describe()} is Conflicted ({clash.reason}): {clash.describe()} and takes precedence "
        f"({_precedence_words(state)})",
        field=state.listener.field,
        fix=f"{fix}, or agree with the owners of {clash.owner.describe()} to change theirs",
        reason="Conflicted",
    )


def _route_kinds(ctx: RuleContext, listener: gw.Listener) -> tuple[Violation, bool | None] | None:
    """The InvalidRouteKinds finding of a listener and whether it still serves some kind."""
    kinds = gw.route_kinds(listener)
    if kinds is None or not (kinds.invalid or kinds.usable is None):
        return None
    serves = ", ".join(sorted(gw.COMPATIBLE_KINDS_BY_PROTOCOL[listener.protocol]))
    at = f"{listener.field}.allowedRoutes.kinds"
    if not kinds.invalid:
        message = (f"{listener.describe()} allows only implementation-specific route kinds "
                   f"({', '.join(kinds.unknown)}): whether any route can attach depends on the implementation")
    else:
        message = f"{listener.describe()} allows route kinds {listener.protocol} listeners do not serve: " \
                  f"{', '.join(kinds.invalid)} ({listener.protocol} serves {serves})"
        if kinds.usable is False:
            message += ", so no route can attach to it"
        else:
            message += f"; it still serves {', '.join(kinds.valid + kinds.unknown)}"
    violation = ctx.violation(
        "listeners/InvalidRouteKinds", message, field=at, reason="InvalidRouteKinds",
        fix=f"list only kinds the protocol serves ({serves}) in allowedRoutes.kinds, or leave kinds empty for "
            "the protocol's defaults",
    )
    return violation, kinds.usable


def _findings(ctx: RuleContext, owner: Owner, states: Iterable[gw.ListenerState]) -> Iterator[tuple[Violation, str, bool]]:
    """(finding, listener name, certain) for every listener of ``owner``."""
    for state in states:
        name = state.listener.name
        if state.conflict is not None:
            yield _conflicted(ctx, state), name, True
        for doubt in state.doubts:
            yield ctx.violation(
                "listeners/Conflicted",
                f"{state.listener.describe()} of {owner.describe()} may be refused: {doubt}",
                field=state.listener.field, reason="Conflicted",
                fix="use a port and hostname no other listener of the Gateway uses",
            ), name, False
        kinds = _route_kinds(ctx, state.listener)
        if kinds is not None:
            yield kinds[0], name, kinds[1] is False


def _judge_listeners(ctx: RuleContext, owner: Owner, states: tuple[gw.ListenerState, ...]) -> list[tuple[Violation, str]]:
    """The findings on the listeners of ``owner`` in their final modes, keyed by listener name."""
    findings = list(_findings(ctx, owner, states))
    unusable = {name for v, name, certain in findings if certain and v.rule in _UNUSABLE}
    if states and unusable >= {s.listener.name for s in states}:
        reasons = "; ".join(v.message for v, _, certain in findings if certain)
        conflicted = all(s.conflicted for s in states)
        what = (f"Gateway {owner.parent[0]}/{owner.parent[1]} would not accept it"
                if conflicted and isinstance(owner, gw.ListenerSet) and owner.parent else "it serves no route")
        not_valid = ctx.violation(
            "listeners/ListenersNotValid",
            f"no listener of {owner.describe()} would be served, so {what} (ListenersNotValid): {reasons}",
            field="spec.listeners", reason="ListenersNotValid",
            fix="fix the listeners named here; a ListenerSet needs at least one listener that is not Conflicted",
        )
        # Only Conflicted listeners are refused by the controller (Accepted=False); a listener
        # with invalid route kinds is accepted and serves nothing (ResolvedRefs=False), so
        # leaving every listener in that state warns unless the policy names the rule.
        out = [(not_valid if conflicted else _at_most_warn(ctx, not_valid), "")]
        return out + [(_at_most_warn(ctx, v, unsure=True), name) for v, name, certain in findings if not certain]
    return [(_at_most_warn(ctx, v, unsure=not certain), name) for v, name, certain in findings]


def _listeners_are_valid(
    ctx: RuleContext, owner: Owner, states: tuple[gw.ListenerState, ...], old: tuple[Owner, tuple[gw.ListenerState, ...]] | None
) -> Iterator[Violation]:
    before = {(v.rule, name) for v, name in _judge_listeners(ctx, *old)} if old is not None else set()
    for violation, name in _judge_listeners(ctx, owner, states):
        yield _ratcheted(violation) if (violation.rule, name) in before else violation


def gateway_listeners_are_valid(ctx: RuleContext, gateway: gw.Gateway, old: gw.Gateway | None) -> Iterator[Violation]:
    """A Gateway's listeners serve some route kind and are distinct from each other."""
    if not ctx.policy.mirror_listeners:
        return
    # A Gateway's own listeners come first: its ListenerSets cannot take them.
    states = gw.merge_listeners(gateway, ()).of("Gateway", *gateway.key)
    previous = (old, gw.merge_listeners(old, ()).of("Gateway", *old.key)) if old is not None else None
    yield from _listeners_are_valid(ctx, gateway, states, previous)


# ----------------------------------------------------------------------------- hostname ownership
def _claim_order(kind: str, meta: gw.Meta) -> tuple[str, str, str, str]:
    """As :func:`webhook.rules.ownership.claim_order`: oldest first, an object not created yet last."""
    return (meta.creation_timestamp or "~", meta.namespace, kind, meta.name)


def _overlap(a: str, b: str) -> bool:
    return gw.hostname_matches(a, b) or gw.hostname_matches(b, a)


def _rivals(
    ctx: RuleContext, listener_set: gw.ListenerSet, gateway: gw.Gateway, hostname: str
) -> Iterator[tuple[tuple[str, str, str, str], str, str]]:
    """(claim order, namespace, what) of every claim of another namespace overlapping ``hostname``."""
    for other in ctx.state.listenersets_for(*gateway.key):
        if other.namespace in (listener_set.namespace, gateway.namespace) or admits(ctx, gateway, other) is False:
            continue
        for listener in other.listeners:
            if listener.hostname and listener.protocol in gw.HOSTNAME_PROTOCOLS and _overlap(listener.hostname, hostname):
                yield (_claim_order("ListenerSet", other.meta), other.namespace,
                       f"{listener.describe()} of {other.describe()}")
    # What routes serve on the Gateway (directly or through any of its sets): their
    # effective hostnames, so a route without hostnames claims its listener's.
    seen = set()
    for claim in rival_claims(ctx.state, Claim(listener_set, ("Gateway", *gateway.key), hostname)):
        route = claim.route
        if route is None or route.key in seen or route.namespace == listener_set.namespace:
            continue
        seen.add(route.key)
        yield _claim_order(route.kind, route.meta), route.namespace, f"{route.describe()}, hostname {claim.hostname}"


def listener_hostnames_are_owned(
    ctx: RuleContext, listener_set: gw.ListenerSet, gateway: gw.Gateway, old: gw.ListenerSet | None
) -> Iterator[Violation]:
    """A tenant's listener hostnames are allowed for its namespace and not another namespace's.

    A listener hostname is a claim of the set's namespace, compared with the hostnames of
    routes and of other tenants' ListenerSet listeners on the same Gateway: the first
    claimant owns a name. Only new claims are judged (a hostname an UPDATE keeps is not).
    """
    if listener_set.namespace == gateway.namespace:
        return
    allowances = ctx.policy.hostnames_allowed
    mine, maybe = allowed_patterns(ctx, listener_set.namespace)
    patterns = describe_all(mine) or "none"
    previous = {listener.hostname for listener in old.listeners} if old is not None else set()
    own = _claim_order("ListenerSet", listener_set.meta)
    for listener in listener_set.listeners:
        hostname = listener.hostname
        if listener.protocol not in gw.HOSTNAME_PROTOCOLS or (old is not None and hostname in previous):
            continue
        verdict = hostname_allowed(mine, maybe, hostname) if hostname is not None else False
        if allowances and verdict is None:
            yield ctx.namespace_unknown(
                listener_set.namespace, f"whether hostname {hostname} of {listener.describe()} is allowed for it "
                f"(TenancyPolicy {ctx.policy.name} hostnames.allowed)", field=f"{listener.field}.hostname",
                subject=f"listener {listener.name}")
        elif allowances and not verdict:
            what = (f"hostname {hostname} of {listener.describe()} is not allowed" if hostname else
                    f"{listener.describe()} has no hostname, so it serves every hostname on its port, which is not "
                    "allowed")
            yield ctx.violation(
                "hostnames/HostnameNotAllowed",
                f"{what} for namespace {listener_set.namespace} (allowed: {patterns})",
                field=f"{listener.field}.hostname",
                fix=(f"use a hostname matching {patterns}" if mine else
                     f"ask the platform team to allow hostnames for namespace {listener_set.namespace} in "
                     f"TenancyPolicy {ctx.policy.name}"),
            )
        if not ctx.policy.hostnames_unique or hostname is None:
            continue
        rivals = [r for r in _rivals(ctx, listener_set, gateway, hostname) if old is not None or r[0] < own]
        if rivals:
            _, namespace, what = min(rivals)
            yield ctx.violation(
                "hostnames/HostnameConflict",
                f"hostname {hostname} of {listener.describe()} is already served by namespace {namespace} ({what})",
                field=f"{listener.field}.hostname",
                fix=f"choose another hostname, or agree with the owners of namespace {namespace} to move it",
            )


# ----------------------------------------------------------------------------- entry points
def listenerset_rules(ctx: RuleContext, listener_set: gw.ListenerSet, old: gw.ListenerSet | None) -> Iterator[Violation]:
    """Everything a ListenerSet on a governed Gateway is judged by (see the module docstring)."""
    gateway = ctx.state.gateway(*listener_set.parent) if listener_set.parent else None
    if gateway is None or not ctx.governs(gateway):
        return  # attachment/GatewayNotFound and listenerset/NotAllowed speak for the set itself
    for rule in LISTENER_GUARDRAILS:
        yield from rule(ctx, listener_set)
    yield from listener_hostnames_are_owned(ctx, listener_set, gateway, old)
    if not ctx.policy.mirror_listeners or admits(ctx, gateway, listener_set) is False:
        return
    states = merged(ctx, gateway, candidate=listener_set).of("ListenerSet", *listener_set.key)
    previous = None
    if old is not None and old.parent == gateway.key:
        previous = (old, merged(ctx, gateway, candidate=old).of("ListenerSet", *old.key))
    yield from _listeners_are_valid(ctx, listener_set, states, previous)


def route_listeners_are_not_conflicted(ctx: RuleContext, route: gw.Route) -> Iterator[Violation]:
    """A route that attaches to a parent only through Conflicted listeners is told it gets no traffic there."""
    if not ctx.policy.mirror_listeners:
        return
    for ref in route.parent_refs:
        found = _parent(ctx, ref)
        if found is None:
            continue
        gateway, owner, listeners = found
        # A Gateway's own listeners come first: ListenerSets cannot take them, so only a
        # ListenerSet parent needs the whole merged list.
        view = merged(ctx, gateway) if ref.is_listenerset else own_listeners(ctx, gateway)
        states = view.of(owner_kind(owner), *owner.key)
        if not any(s.conflicted for s in states):
            continue
        attachment = ctx.attachment(route, ref, listeners, owner_namespace=ref.namespace)
        if attachment.reason is not None:
            continue  # the attachment rules report why it does not attach at all
        usable = tuple(s.listener for s in states if not s.conflicted)
        if gw.evaluate_attachment(route, ref, usable, owner_namespace=ref.namespace,
                                  namespace_labels=ctx.labels(route.namespace)).reason is None:
            continue
        conflicted = "; ".join(
            f"{s.listener.describe()} is Conflicted with {s.conflict.describe()}"
            for s in states if s.conflict is not None and any(v.listener == s.listener for v in attachment.verdicts if v.attaches)
        )
        yield _at_most_warn(ctx, ctx.violation(
            "listeners/Conflicted",
            f"{ref.describe()}: the route attaches only to Conflicted listeners, which serve no traffic until the "
            f"conflict is resolved ({conflicted})",
            field=ref.field, reason="Conflicted",
            fix=f"attach to a listener that is not Conflicted, or ask the owners of {owner.describe()} to resolve it",
        ))


def _parent(ctx: RuleContext, ref: gw.ParentRef) -> tuple[gw.Gateway, Owner, tuple[gw.Listener, ...]] | None:
    """The governed Gateway, the direct parent and its listeners for a Gateway or accepted ListenerSet parentRef."""
    if ref.is_gateway:
        gateway = ctx.state.gateway(ref.namespace, ref.name)
        owner: Owner | None = gateway
    elif ref.is_listenerset:
        owner = ctx.state.listenerset(ref.namespace, ref.name)
        gateway = ctx.state.gateway(*owner.parent) if owner is not None and owner.parent else None
        if gateway is not None and owner is not None and admits(ctx, gateway, owner) is False:
            return None
    else:
        return None
    if gateway is None or owner is None or not ctx.governs(gateway):
        return None
    return gateway, owner, owner.listeners
