"""The engine: ``decide(request, policies, state) -> Decision``. Pure: no I/O.

The webhook, the offline CLI and the tests call this one function. It picks the rules
for the request's kind and operation, runs every applicable policy (skipping those that
exempt the requester), collects *all* violations, and folds them into a Decision.

Decisions worth knowing:

* Kinds without rules, sub-resources and operations no rule reads (route DELETEs, see
  :data:`VALIDATED_OPERATIONS`) are allowed untouched. The one core kind judged is a
  Service that carries a gateway controller's marks
  (``services/ImpersonatesGeneratedService``).
* On UPDATE only what changes is judged (ratcheting, as Kubernetes does for CRD
  validation, KEP-4008): a finding the object already had before the UPDATE (same rule,
  same subject: see :attr:`Violation.identity`) only warns, and an UPDATE that changes
  only metadata, or of an object being deleted, is allowed with its findings as warnings.
* An object whose fields have the wrong types (possible before schema validation, on
  the mutating path) is answered ``allowed: false`` with code 400 on the validating path
  and left unpatched, with a warning, on the mutating path.
* A parentRef to a Gateway the view does not hold is ``attachment/GatewayNotFound``,
  a warning by default: GitOps tools may apply a route before its Gateway.
* While the cluster view is stale (not synced, or older than ``staleState.maxAgeSeconds``)
  violations of rules that read it are downgraded to warnings, or, with
  ``staleState.mode: enforce``, the request is denied with ``state/StaleClusterView``:
  never silently wrong.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import jsonpatch
import orjson

from . import gatewayapi as gw
from .admission import AdmissionRequest
from .decision import Decision, Mode, Violation, allowed, from_violations, invalid
from .policy.exceptions import apply_exceptions
from .policy.model import PolicySet, TenancyPolicy
from .rules import (
    attachment,
    blastradius,
    gateways,
    hostnames,
    listenersets,
    references,
    routekinds,
    services,
)
from .rules.context import RuleContext
from .state.store import ClusterState

T = TypeVar("T")

# Rules whose answer depends on the cluster view (degraded while it is stale).
STATE_RULES = frozenset(
    {
        "attachment/NoMatchingParent",
        "attachment/NotAllowedByListeners",
        "attachment/NoMatchingListenerHostname",
        "attachment/NotAllowedByPolicy",
        "listenerset/NotAllowed",
        "listeners/Conflicted",
        "listeners/ListenersNotValid",
        "hostnames/HostnameConflict",
        "hostnames/PathConflict",
        "attachment/RouteKindConflict",
        "references/RefNotPermitted",
        "blastradius/RoutesDetached",
        "blastradius/RefsRevoked",
        "blastradius/ListenerSetsDetached",
        "blastradius/ListenersConflicted",
        "blastradius/WaitingRoutesConflict",
        "blastradius/HostnamesMoved",
    }
)


# The operations whose requests a validating rule reads, by kind. The validating webhook
# configuration in deploy/ sends exactly these (tests/test_deploy.py keeps the two in
# step): an operation no rule reads must not wait on a webhook that fails closed (a
# route DELETE while routewarden is down would be refused for nothing).
VALIDATED_OPERATIONS: Mapping[str, frozenset[str]] = {
    **{kind: frozenset({"CREATE", "UPDATE"}) for kind in gw.ROUTE_KINDS},
    "Gateway": frozenset({"CREATE", "UPDATE", "DELETE"}),  # DELETE: blast radius
    "ListenerSet": frozenset({"CREATE", "UPDATE", "DELETE"}),  # DELETE: blast radius
    "ReferenceGrant": frozenset({"UPDATE", "DELETE"}),  # blast radius only
}


def decide(
    request: AdmissionRequest,
    policies: PolicySet,
    state: ClusterState,
    *,
    webhook: str = "validate",
    now: float | None = None,
    at: datetime | None = None,
) -> Decision:
    """Answer one admission request. ``webhook`` is ``validate`` or ``mutate``.

    ``now`` is the monotonic time the view's age is measured at, ``at`` the wall-clock
    time exceptions expire at (both default to the current time)."""
    if webhook == "mutate":
        return mutate(request, policies, state)
    if not request.sub_resource and (request.kind.group, request.kind.kind) == ("", "Service"):
        findings = list(services.generated_service_is_from_its_controller(request, policies, state))
        return _fold(findings, policies, state, now=now)
    if (
        request.sub_resource
        or request.kind.group != gw.GROUP
        or request.operation not in VALIDATED_OPERATIONS.get(request.kind.kind, ())
    ):
        return allowed()
    try:
        violations = _ratchet(request, list(_validate(request, policies, state)), policies, state)
    except gw.MalformedObject as exc:
        why = _never_refused(request)
        if why is not None:
            return allowed(warnings=(f"{request.kind.kind} cannot be checked: {exc} ({why})",))
        return invalid(f"{request.kind.kind} cannot be checked: {exc}")
    if not policies.exceptions:
        return _fold(violations, policies, state, now=now)
    violations, used, notes = apply_exceptions(violations, policies.exceptions, request,
                                               state.namespace_labels(request.namespace), now=at or datetime.now(UTC))
    decision = _fold(violations, policies, state, now=now)
    return dataclasses.replace(decision, exceptions=used, warnings=decision.warnings + notes)


def _once(parse: Callable[[], T]) -> Callable[[], T]:
    """``parse()`` run on the first call only: every policy reads the same typed view of
    the request, so a review is parsed once however many policies apply (and not at all
    when every policy exempts the requester, as before)."""
    box: list[T] = []

    def get() -> T:
        if not box:
            box.append(parse())
        return box[0]

    return get


def _validate(
    request: AdmissionRequest, policies: PolicySet, state: ClusterState, *, before: bool = False
) -> Iterator[Violation]:
    """The findings of every policy on the request's object, or, with ``before``, on the
    object as it was before an UPDATE (judged against the same view, without the rules
    that judge the change itself)."""
    kind = request.kind.kind
    namespace = request.namespace
    subject = request.old_object if before else request.object
    route = _once(lambda: gw.Route.from_object(subject or {}, kind=kind, namespace=namespace))
    old_route = _once(lambda: gw.Route.from_object(request.old_object, kind=kind, namespace=namespace)
                      if request.old_object else None)
    gateway = _once(lambda: gw.Gateway.from_object(subject, namespace=namespace)
                    if request.operation in ("CREATE", "UPDATE") and subject is not None else None)
    old_gateway = _once(lambda: gw.Gateway.from_object(request.old_object, namespace=namespace)
                        if request.operation in ("UPDATE", "DELETE") and request.old_object and not before else None)
    old_grant = _once(lambda: gw.ReferenceGrant.from_object(request.old_object or {}, namespace=namespace))
    new_grant = _once(lambda: gw.ReferenceGrant.from_object(request.object, namespace=namespace)
                      if request.operation == "UPDATE" and request.object is not None else None)
    listener_set = _once(lambda: gw.ListenerSet.from_object(subject, namespace=namespace)
                         if request.operation in ("CREATE", "UPDATE") and subject is not None else None)
    old_listener_set = _once(lambda: gw.ListenerSet.from_object(request.old_object, namespace=namespace)
                             if request.operation in ("UPDATE", "DELETE") and request.old_object else None)
    memo: dict[Any, Any] = {}
    for policy in policies.tenancy:
        if policy.exempt.covers(
            namespace=request.namespace, username=request.user.username, groups=request.user.groups
        ):
            continue
        ctx = RuleContext(request, policy, state, memo)
        if kind in gw.ROUTE_KINDS and request.operation in ("CREATE", "UPDATE"):
            yield from _route_rules(ctx, route(), old_route())
        elif kind == "Gateway":
            yield from _gateway_rules(ctx, gateway, old_gateway)
        elif kind == "ReferenceGrant" and request.operation in ("UPDATE", "DELETE") and not before:
            old = old_grant()
            yield from blastradius.grant_change_keeps_references(ctx, old, new_grant())
        elif kind == "ListenerSet":
            new, old = listener_set(), old_listener_set()
            if new is not None and subject is not None:
                yield from attachment.listenerset_is_accepted(ctx, subject, namespace=namespace)
                yield from listenersets.listenerset_rules(ctx, new, old)
            if not before:
                yield from blastradius.listenerset_change_keeps_routes(ctx, old, new)


def _ratchet(
    request: AdmissionRequest, violations: list[Violation], policies: PolicySet, state: ClusterState
) -> list[Violation]:
    """Judge what an UPDATE changes: only new or worsened findings deny.

    A finding the object already had before the UPDATE, as a denial, with the same
    :attr:`~Violation.identity` (rule and subject: the parent, hostname, reference or
    listener, never a list position) only warns. A finding that was a warning before
    (a refusal on one parent while another attached) and denies now has worsened, and
    denies. An UPDATE that changes nothing but metadata (labels, annotations,
    finalizers, ownerReferences), or of an object being deleted (finalizers are removed
    by UPDATEs after ``deletionTimestamp`` is set), is allowed with every finding as a warning.
    """
    if not any(v.mode is Mode.ENFORCE for v in violations):
        return violations
    why = _never_refused(request)
    before: set[tuple[str, str]] | None = None
    if why is None:
        before = _denied_before(request, policies, state)
        if not before:
            return violations
        why = "the object had this before this UPDATE; only new findings deny"
    return [
        v.softened(why) if v.mode is Mode.ENFORCE and (before is None or v.identity in before) else v
        for v in violations
    ]


def _denied_before(request: AdmissionRequest, policies: PolicySet, state: ClusterState) -> set[tuple[str, str]]:
    """The identities of the denials the object had before an UPDATE (none for other operations)."""
    if request.operation != "UPDATE" or request.old_object is None:
        return set()
    try:
        return {v.identity for v in _validate(request, policies, state, before=True) if v.mode is Mode.ENFORCE}
    except gw.MalformedObject:
        return set()  # the stored object cannot be read: nothing to compare with, judged as new


def _never_refused(request: AdmissionRequest) -> str | None:
    """Why a request is allowed whatever its findings (an UPDATE that changes only
    metadata, or of an object being deleted), or None when it is judged."""
    if request.operation != "UPDATE" or not isinstance(request.old_object, dict):
        return None
    new, old = request.object or {}, request.old_object
    if _deleting(new) or _deleting(old):
        return "the object is being deleted, and an UPDATE that lets its deletion finish is never refused"
    if _judged_fields(new) == _judged_fields(old):
        return "this UPDATE changes only metadata, which no rule reads"
    return None


def _deleting(obj: Mapping[str, Any]) -> bool:
    meta = obj.get("metadata")
    return isinstance(meta, dict) and bool(meta.get("deletionTimestamp"))


def _judged_fields(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The object without what no validating rule reads: metadata (labels, annotations,
    finalizers, ownerReferences, ...; name, namespace and creationTimestamp cannot change
    on UPDATE) and status (a sub-resource, never sent here)."""
    return {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata", "status")}


def _route_rules(ctx: RuleContext, route: gw.Route, old: gw.Route | None) -> Iterator[Violation]:
    yield from attachment.route_attaches_to_listeners(ctx, route)
    yield from attachment.route_namespace_may_use_gateway(ctx, route)
    yield from hostnames.route_names_hostnames(ctx, route)
    yield from hostnames.route_hostnames_are_allowed(ctx, route)
    yield from hostnames.route_hostnames_are_unclaimed(ctx, route, old)
    yield from listenersets.route_listeners_are_not_conflicted(ctx, route)
    yield from routekinds.route_kinds_share_no_listener(ctx, route)
    governed = _references_governed(ctx, route)
    if governed is False:
        return
    for violation in references.route_references_are_granted(ctx, route, governed=True):
        if governed is None and violation.mode is Mode.ENFORCE:
            violation = violation.softened(
                f"which Gateway serves this route is unknown ({_unreached(route)}), so whether TenancyPolicy "
                f"{ctx.policy.name} governs it is too; the controller refuses the reference whichever Gateway it is")
        yield violation


def _governs_ref(ctx: RuleContext, ref: gw.ParentRef) -> bool:
    """Whether the policy governs the parentRef's Gateway (or, for one the view does not
    hold, may). A parent that is not a Gateway or ListenerSet is never governed."""
    if not (ref.is_gateway or ref.is_listenerset):
        return False
    gateway, _, _ = attachment.parent_listeners(ctx, ref)
    return ctx.governs(gateway) if gateway is not None else ctx.may_govern(ref)


MAX_DELEGATION = 8  # parent routes followed, at most, from a delegated route to its Gateways


def _references_governed(ctx: RuleContext, route: gw.Route) -> bool | None:
    """Whether the policy judges the route's references: True, False, or None when which
    Gateway serves the route is unknown (then findings only warn).

    A cross-namespace reference without a ReferenceGrant is refused by the controller
    whatever the route's parents, so every route is judged: by the policies governing a
    Gateway it reaches (directly, through a ListenerSet, or through the parent routes a
    delegated route names, such as kgateway's parentRef of kind HTTPRoute), and by every
    policy whose match is every Gateway. A route that reaches no Gateway the view can
    name (no parentRefs, or a parent route the view does not hold) is judged by every
    policy, as warnings. Mesh routes (Service parents) are judged by match-everything
    policies only: no Gateway serves them.
    """
    if ctx.policy.match.everything or any(_governs_ref(ctx, ref) for ref in route.parent_refs):
        return True
    reached = _delegated_parents(ctx, route)
    if any(_governs_ref(ctx, ref) for ref in reached):
        return True
    if reached or any(ref.is_gateway or ref.is_listenerset for ref in route.parent_refs):
        return False
    if route.parent_refs and not any(_is_route_ref(ref) for ref in route.parent_refs):
        return False  # Service (GAMMA mesh) or implementation-specific parents only
    return None


def _is_route_ref(ref: gw.ParentRef) -> bool:
    return ref.group == gw.GROUP and ref.kind in gw.ROUTE_KINDS


def _delegated_parents(ctx: RuleContext, route: gw.Route) -> list[gw.ParentRef]:
    """The Gateway and ListenerSet parentRefs of the parent routes a delegated route names,
    followed through the view (at most :data:`MAX_DELEGATION` routes, each once)."""
    key = ("delegated", id(route))
    found = ctx.memo.get(key)
    if found is not None:
        return found
    reached: list[gw.ParentRef] = []
    seen = {route.key}
    todo = [ref for ref in route.parent_refs if _is_route_ref(ref)]
    while todo and len(seen) <= MAX_DELEGATION:
        ref = todo.pop()
        parent = ctx.state.route(ref.kind, ref.namespace, ref.name)
        if parent is None or parent.key in seen:
            continue
        seen.add(parent.key)
        for up in parent.parent_refs:
            if up.is_gateway or up.is_listenerset:
                reached.append(up)
            elif _is_route_ref(up):
                todo.append(up)
    ctx.memo[key] = reached
    return reached


def _unreached(route: gw.Route) -> str:
    if not route.parent_refs:
        return "it has no parentRefs"
    names = ", ".join(ref.describe() for ref in route.parent_refs if ref.group == gw.GROUP and ref.kind in gw.ROUTE_KINDS)
    return f"its parent route ({names}) is not in the view, or reaches no Gateway"


def _gateway_rules(
    ctx: RuleContext, gateway: Callable[[], gw.Gateway | None], old_gateway: Callable[[], gw.Gateway | None]
) -> Iterator[Violation]:
    new, old = gateway(), old_gateway()
    governed = ctx.governance(new) if new is not None else False
    if governed is None:
        yield ctx.governance_unknown(new)
    if new is not None and governed:
        for rule in gateways.GATEWAY_RULES:
            yield from rule(ctx, new)
        yield from listenersets.gateway_listeners_are_valid(ctx, new, old)
        if old is None and ctx.request.operation == "CREATE":
            yield from blastradius.waiting_routes_do_not_conflict(ctx, new)
    if old is not None:
        yield from blastradius.gateway_change_keeps_routes(ctx, old, new)
        if new is not None and governed:
            yield from blastradius.gateway_change_keeps_hostnames_apart(ctx, old, new)


def _stale(policy: TenancyPolicy, state: ClusterState, now: float | None) -> str | None:
    if not state.synced:
        pending = sorted(k for k in state.expected_kinds if not state.is_synced(k))
        return f"the cluster view has not synced yet ({', '.join(pending)})"
    if policy.stale_max_age is not None:
        age = state.view_age(now)
        if age > policy.stale_max_age:
            return (f"the cluster view is stale (not confirmed by the API server for {age:.0f}s, "
                    f"limit {policy.stale_max_age:.0f}s)")
    return None


def _fold(violations: list[Violation], policies: PolicySet, state: ClusterState, *, now: float | None) -> Decision:
    # One report per finding, however many policies make it, in the strictest mode any
    # of them gives it: a warn policy listed first must not hide another policy's enforce.
    strictest: dict[tuple[str, str, str], Violation] = {}
    for v in violations:
        key = (v.rule, v.field, v.message)
        if key not in strictest or v.mode.strictness > strictest[key].mode.strictness:
            strictest[key] = v
    deduped = list(strictest.values())
    by_name = {p.name: p for p in policies.tenancy}
    out: list[Violation] = []
    notes: list[str] = []
    for v in deduped:
        policy = by_name.get(v.policy)
        stale = _stale(policy, state, now) if policy is not None and v.rule in STATE_RULES else None
        if stale is None or v.mode is not Mode.ENFORCE:
            out.append(v)
            continue
        stale_mode = policy.mode_for("state/StaleClusterView")
        if stale_mode is Mode.ENFORCE:
            out.append(
                Violation(
                    "state/StaleClusterView",
                    "StaleClusterView",
                    f"{stale}, so routewarden cannot check this object reliably ({v.rule})",
                    fix="retry shortly; if this persists, check routewarden's watches (metrics routewarden_cache_*)",
                    policy=v.policy,
                )
            )
        else:
            out.append(_with_mode(v, Mode.WARN))
            notes.append(f"{stale}: {v.rule} only warns until it is current")
    return from_violations(out, warnings=tuple(dict.fromkeys(notes)))


def _with_mode(v: Violation, mode: Mode) -> Violation:
    return dataclasses.replace(v, mode=mode)


# ----------------------------------------------------------------------------- mutation
def mutate(request: AdmissionRequest, policies: PolicySet, state: ClusterState) -> Decision:
    """Run the mutators for the request's kind on a copy and diff it into a JSON Patch."""
    if request.sub_resource or request.operation not in ("CREATE", "UPDATE") or request.object is None:
        return allowed()
    from .mutation import mutators_for  # the mutation package depends on the engine's types only

    mutators = mutators_for(request)
    if not mutators:
        return allowed()
    original: dict[str, Any] = request.object
    warnings: list[str] = []
    findings: list[Violation] = []  # a mutator's findings never deny: they are recorded and warned
    try:
        changed = _copy(original)
        for mutator in mutators:
            for said in mutator(changed, request=request, policies=policies, state=state):
                (findings if isinstance(said, Violation) else warnings).append(said)
        patch = tuple(jsonpatch.make_patch(*_without_unchanged(original, changed)).patch)
    except gw.MalformedObject as exc:
        return allowed(warnings=(f"routewarden did not mutate this {request.kind.kind}: {exc}",))
    except RecursionError:  # JSON nested deeper than Python's stack (the apiserver's decoder allows it)
        return allowed(warnings=(f"routewarden did not mutate this {request.kind.kind}: it is nested too deeply",))
    if findings:
        return from_violations([_with_mode(f, Mode.WARN) for f in findings], warnings=tuple(warnings), patch=patch)
    return allowed(warnings=tuple(warnings), patch=patch)


def _copy(obj: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a JSON object for the mutators to change: orjson's round trip, about
    seven times faster than ``copy.deepcopy`` on a Service with managedFields. An object
    that is not plain JSON (from YAML: a date, a set, a NaN, an integer past 64 bits, or
    nested past orjson's depth) does not come back equal, and is copied by ``deepcopy``.
    Sub-objects shared in the original (YAML aliases) come back as separate copies, as the
    API server would store them."""
    try:
        copied = orjson.loads(orjson.dumps(obj))
    except (orjson.JSONEncodeError, orjson.JSONDecodeError):
        return copy.deepcopy(obj)
    return copied if copied == obj else copy.deepcopy(obj)


def _same_json(a: Any, b: Any) -> bool:
    """Whether two values serialize to the same JSON bytes (types included: 1, 1.0 and
    true differ, as they do for jsonpatch, which compares leaves by their JSON text)."""
    if a is b:
        return True
    try:
        return orjson.dumps(a) == orjson.dumps(b)
    except (orjson.JSONEncodeError, TypeError):
        return False  # not plain JSON, or nested too deeply: let jsonpatch compare it


def _without_unchanged(src: Any, dst: Any) -> tuple[Any, Any]:
    """``src`` and ``dst`` without the members they share unchanged, for jsonpatch.

    jsonpatch walks every leaf of both objects and serializes each one to compare it:
    most of a mutation's cost on a Service with managedFields. A member whose value did
    not change yields no operation, and jsonpatch takes members in the order of the
    objects, so leaving it out of both changes neither the operations nor their order.
    Objects both sides have are pruned the same way, recursively; lists are left whole
    (jsonpatch diffs them by position).
    """
    if type(src) is not dict or type(dst) is not dict:
        return src, dst
    s, d = dict(src), dict(dst)
    for key in src.keys() & dst.keys():
        a, b = src[key], dst[key]
        if _same_json(a, b):
            del s[key], d[key]
        elif type(a) is dict and type(b) is dict:
            s[key], d[key] = _without_unchanged(a, b)
    return s, d
