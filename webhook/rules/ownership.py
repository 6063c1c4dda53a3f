"""Hostname ownership: what a route claims, who else claims it, and who claimed it first.

Shared by the admission rules (``hostnames/HostnameConflict``, ``hostnames/PathConflict``,
``attachment/RouteKindConflict``), the Gateway CREATE warning and the audit, so all of
them name the same owner for the same conflict.

**What a route claims** (:func:`route_claims`) are its *effective* hostnames on each
Gateway it reaches: per listener its parentRef selects (on the Gateway, or on a
ListenerSet the Gateway accepts, which resolves to that Gateway), the route's hostnames
intersected with the listener's, or the listener's hostname when the route lists none
(the Gateway API's hostname intersection). Listeners known to refuse the route
(namespace or kind) and listeners that do not match on hostnames give nothing. A route
that lists no hostnames on a listener without one catches every name (``*``): it
takes no name from anyone (a more specific hostname wins), so it claims none for
ownership. While the Gateway a parentRef names is not in the view (GitOps applies
routes first), the route claims its own hostnames on that named parent: routes that
name the same parent are compared before it exists.

**Who else claims it** (:func:`rival_claims`) is found through indexes only: the routes
listing the name, a wildcard over it or (for a wildcard) a name under it, plus the
routes listing no hostnames on the Gateway's listeners whose hostname overlaps it.

**Who was first**: in the cluster the apiserver's ``creationTimestamp`` orders the
claimants. Manifests carry none, so offline the order is known only where something
tells it (:func:`claimed_before`): a live object listed with ``--cluster`` is dated, what
a change adds over its baseline (``ClusterState.added``) and a request the view does not
hold are newer than the rest, and two undated objects of the same age cannot be ordered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .. import gatewayapi as gw
from ..state.kinds import ROUTE_KINDS
from ..state.store import LISTENER_SOURCES, ClusterState

LISTENERS_AND_ROUTES = LISTENER_SOURCES.union(ROUTE_KINDS)

Claimant = gw.Route | gw.ListenerSet
EVERY_HOSTNAME = "*"


@dataclass(frozen=True, slots=True)
class Claim:
    """One hostname a route (or a tenant's ListenerSet listener) serves on one Gateway.

    ``gateway`` is (``Gateway``, namespace, name); while the parent a route names is not
    in the view (``pending``), it is that parent as named (a ListenerSet the view does not
    hold cannot be resolved to its Gateway). ``listener`` is (owner kind, namespace, name,
    listener name), None while pending. ``certain``: the listener is known to accept the
    route, not only not known to refuse it (a namespace's labels may be unknown).
    """

    claimant: Claimant
    gateway: tuple[str, str, str]
    hostname: str
    listener: tuple[str, str, str, str] | None = None
    ref: gw.ParentRef | None = None
    certain: bool = True
    pending: bool = False

    @property
    def namespace(self) -> str:
        return self.claimant.namespace

    @property
    def route(self) -> gw.Route | None:
        return self.claimant if isinstance(self.claimant, gw.Route) else None

    @property
    def paths(self) -> tuple[gw.PathMatch, ...]:
        """The paths claimed on the host: a route's path matches; a listener takes the whole host."""
        route = self.route
        return route.paths if route is not None and route.paths else (gw.paths.WHOLE_HOST,)

    def describe_gateway(self) -> str:
        kind, namespace, name = self.gateway
        return f"{kind} {namespace}/{name}"

    def describe(self) -> str:
        """The claimant, and for a listener claim, which listener."""
        if self.route is not None:
            return self.claimant.describe()
        return f"listener {self.listener[3]!r} of {self.claimant.describe()}" if self.listener else \
            self.claimant.describe()


def hostnames_overlap(a: str, b: str) -> bool:
    """Two effective hostnames share a name (``*`` shares every name)."""
    return a == EVERY_HOSTNAME or b == EVERY_HOSTNAME or gw.hostname_matches(a, b) or gw.hostname_matches(b, a)


# ----------------------------------------------------------------------------- what a route claims
Attach = Callable[..., gw.Attachment]


def route_claims(
    state: ClusterState, route: gw.Route, *, gateways: Mapping[tuple[str, str], gw.Gateway] | None = None,
    attach: Attach | None = None,
) -> tuple[Claim, ...]:
    """Every hostname ``route`` serves (or will serve) on each Gateway it reaches.

    ``gateways`` stand in for the view's Gateways of the same keys (a Gateway being
    created). ``attach`` evaluates one parentRef as :func:`~webhook.gatewayapi.evaluate_attachment`
    does (a rule passes the request's memoized one). The claims of a route the view holds
    are kept until the view changes.
    """
    if route.kind not in gw.HOSTNAME_ROUTE_KINDS:
        return ()
    if not gateways and state.route(*route.key) is route:
        return state.derived(("claims", route.key), lambda: _claims(state, route, {}, None),
                             reads=LISTENER_SOURCES, anchor=route)
    return _claims(state, route, gateways or {}, attach)


def _pending(route: gw.Route, ref: gw.ParentRef, parent: tuple[str, str, str]) -> Iterator[Claim]:
    for hostname in route.hostnames:
        yield Claim(route, parent, hostname, ref=ref, pending=True)


def _claims(state: ClusterState, route: gw.Route, gateways: Mapping[tuple[str, str], gw.Gateway],
            attach: Attach | None) -> tuple[Claim, ...]:
    out: list[Claim] = []
    labels = state.namespace_labels(route.namespace)
    for ref in route.parent_refs:
        admitted: bool | None = True
        if ref.is_gateway:
            gateway = gateways.get(ref.gateway_key) or state.gateway(*ref.gateway_key)
            if gateway is None:
                out.extend(_pending(route, ref, ("Gateway", *ref.gateway_key)))
                continue
            owner: tuple[str, str, str] = ("Gateway", *gateway.key)
            listeners = gateway.listeners
        elif ref.is_listenerset:
            listener_set = state.listenerset(ref.namespace, ref.name)
            if listener_set is None:
                out.extend(_pending(route, ref, ("ListenerSet", ref.namespace, ref.name)))
                continue
            if listener_set.parent is None:
                continue
            gateway = gateways.get(listener_set.parent) or state.gateway(*listener_set.parent)
            if gateway is None:
                out.extend(_pending(route, ref, ("Gateway", *listener_set.parent)))
                continue
            admitted = gw.gateway_admits_listenerset(gateway, namespace=listener_set.namespace,
                                                     namespace_labels=state.namespace_labels(listener_set.namespace))
            if admitted is False:
                continue  # the Gateway serves none of the set's listeners
            owner = ("ListenerSet", *listener_set.key)
            listeners = listener_set.listeners
        else:
            continue  # a Service (GAMMA) or another kind: never a Gateway
        if attach is not None and not gateways:
            attachment = attach(route, ref, listeners, owner_namespace=owner[1])
        else:
            attachment = gw.evaluate_attachment(route, ref, listeners, owner_namespace=owner[1], namespace_labels=labels)
        for verdict in attachment.verdicts:
            if not verdict.may_accept or not verdict.listener.matches_hostnames:
                continue
            for hostname in verdict.hostnames:
                out.append(Claim(route, ("Gateway", *gateway.key), hostname, (*owner, verdict.listener.name), ref,
                                 certain=verdict.accepts and admitted is True))
    return tuple(out)


def gateway_listeners(state: ClusterState, key: tuple[str, str]) -> tuple[tuple[Claimant, gw.Listener], ...]:
    """The listeners of Gateway ``key`` and of the ListenerSets it does not refuse, with
    their owner (kept until the view changes)."""

    def build() -> tuple[tuple[Claimant, gw.Listener], ...]:
        gateway = state.gateway(*key)
        if gateway is None:
            return ()
        out: list[tuple[Claimant, gw.Listener]] = [(gateway, listener) for listener in gateway.listeners]
        for listener_set in state.listenersets_for(*key):
            admitted = gw.gateway_admits_listenerset(gateway, namespace=listener_set.namespace,
                                                     namespace_labels=state.namespace_labels(listener_set.namespace))
            if admitted is not False:
                out.extend((listener_set, listener) for listener in listener_set.listeners)
        return tuple(out)

    return state.derived(("gateway-listeners", key), build, reads=LISTENER_SOURCES)


# ----------------------------------------------------------------------------- who else claims it
def overlapping_routes(state: ClusterState, hostname: str) -> Iterator[gw.Route]:
    """Routes with ``hostname``, a wildcard over it, or (for a wildcard) a name under it.

    Index lookups only: one per parent domain of ``hostname``, plus the domain index for
    a wildcard. A route may be yielded more than once.
    """
    yield from state.routes_with_hostname(hostname)
    labels = hostname.split(".")
    start = 1 if gw.is_wildcard(hostname) else 0
    for i in range(start + 1, len(labels)):
        yield from state.routes_with_hostname("*." + ".".join(labels[i:]))
    if gw.is_wildcard(hostname):
        yield from state.routes_under_domain(hostname[2:])


def _by_name(state: ClusterState, hostname: str, memo: dict[Any, Any] | None) -> list[gw.Route]:
    """:func:`overlapping_routes`, kept in ``memo`` for the claims of one request."""
    key = ("overlapping", hostname)
    found = memo.get(key) if memo is not None else None
    if found is None:
        found = list(overlapping_routes(state, hostname))
        if memo is not None:
            memo[key] = found
    return found


def _may_have_rivals(state: ClusterState, claim: Claim, memo: dict[Any, Any] | None, *, listeners: bool) -> bool:
    """False when nothing can overlap ``claim``: no route lists an overlapping name, and the
    Gateway has no listener that routes without hostnames or a tenant's set take whole."""
    if claim.hostname == EVERY_HOSTNAME:
        return False
    if _by_name(state, claim.hostname, memo) or claim.pending:
        return True
    key = claim.gateway[1:]
    return bool(_listeners_taken_whole(state, key)) or (listeners and bool(_tenant_listeners(state, key)))


def _candidates(state: ClusterState, claim: Claim, memo: dict[Any, Any] | None = None) -> Iterator[gw.Route]:
    """Routes that may claim a name overlapping ``claim``'s on its Gateway, each once.
    ``memo`` keeps the routes found by hostname for the claims of one request."""
    seen = {claim.claimant.key} if claim.route is not None else set()
    found = list(_by_name(state, claim.hostname, memo))
    if not claim.pending:
        for owner, listener in _listeners_taken_whole(state, claim.gateway[1:]):
            if hostnames_overlap(listener.hostname or "", claim.hostname):
                found.extend(state.routes_without_hostnames(owner.kind, owner.namespace, owner.name, listener))
    for route in found:
        if route.key not in seen:
            seen.add(route.key)
            yield route


def rival_claims(state: ClusterState, claim: Claim, memo: dict[Any, Any] | None = None) -> Iterator[Claim]:
    """Other routes' claims on ``claim``'s Gateway (or pending parent) whose names overlap it.

    A catch-all claim (``*``) takes no name and has no rivals here.
    """
    if claim.hostname == EVERY_HOSTNAME:
        return
    for route in _candidates(state, claim, memo):
        for other in route_claims(state, route):
            if (other.gateway == claim.gateway and other.pending == claim.pending
                    and other.hostname != EVERY_HOSTNAME and hostnames_overlap(other.hostname, claim.hostname)):
                yield other


def listener_claims(state: ClusterState, claim: Claim) -> Iterator[Claim]:
    """The hostnames of tenants' ListenerSet listeners on ``claim``'s Gateway overlapping it:
    a set outside the Gateway's namespace claims its listener hostnames for its namespace."""
    if claim.pending or claim.hostname == EVERY_HOSTNAME:
        return
    for owner, listener in _tenant_listeners(state, claim.gateway[1:]):
        if hostnames_overlap(listener.hostname or "", claim.hostname):
            yield Claim(owner, claim.gateway, listener.hostname or "", ("ListenerSet", *owner.key, listener.name))


def _listeners_taken_whole(state: ClusterState, key: tuple[str, str]) -> tuple[tuple[Claimant, gw.Listener], ...]:
    """The listeners of Gateway ``key`` (and its sets) with a hostname that routes listing
    no hostnames attach to: they claim that hostname (kept until the view changes)."""
    return state.derived(("listeners-taken-whole", key), lambda: tuple(
        (owner, listener) for owner, listener in gateway_listeners(state, key)
        if listener.hostname and listener.matches_hostnames
        and state.has_routes_without_hostnames(owner.kind, owner.namespace, owner.name)),
        reads=LISTENERS_AND_ROUTES)


def _tenant_listeners(state: ClusterState, key: tuple[str, str]) -> tuple[tuple[gw.ListenerSet, gw.Listener], ...]:
    """The hostname-matching listeners of tenants' ListenerSets on Gateway ``key`` (sets
    outside the Gateway's namespace), kept until the view changes."""
    return state.derived(("tenant-listeners", key), lambda: tuple(
        (owner, listener) for owner, listener in gateway_listeners(state, key)
        if isinstance(owner, gw.ListenerSet) and owner.namespace != key[0] and listener.hostname
        and listener.matches_hostnames), reads=LISTENER_SOURCES)


def same_listener_claims(state: ClusterState, claim: Claim, kind: str,
                         memo: dict[Any, Any] | None = None) -> Iterator[Claim]:
    """Claims of ``kind`` routes on ``claim``'s listener whose hostnames intersect it (a
    catch-all intersects every name: then every route of that kind on the listener's owner
    is looked at)."""
    if claim.listener is None:
        return
    owner_kind, namespace, name, _ = claim.listener
    if claim.hostname == EVERY_HOSTNAME:
        routes: Iterator[gw.Route] | tuple[gw.Route, ...] = (
            state.routes_attached_to(namespace, name) if owner_kind == "Gateway"
            else state.routes_attached_to_listenerset(namespace, name))
    else:
        routes = _candidates(state, claim, memo)
    for route in routes:
        if route.kind != kind or (claim.route is not None and route.key == claim.route.key):
            continue
        for other in route_claims(state, route):
            if other.listener == claim.listener and hostnames_overlap(other.hostname, claim.hostname):
                yield other


# ----------------------------------------------------------------------------- who was first
def claim_order(claimant: Claimant) -> tuple[str, str, str, str]:
    """The order in which routes (and ListenerSets) claimed their hostnames: oldest first.

    RFC 3339 UTC timestamps sort as strings; an object not created yet sorts last; ties
    are broken by namespace, kind and name so every replica picks the same owner.
    """
    return (claimant.meta.creation_timestamp or "~", claimant.namespace, claimant.kind, claimant.name)


def acceptance_order(claimant: Claimant) -> tuple[str, str]:
    """The order the GRPCRoute spec gives an HTTPRoute and a GRPCRoute sharing a listener:
    "the oldest Route based on creation timestamp", then "{namespace}/{name}"."""
    return (claimant.meta.creation_timestamp or "~", f"{claimant.namespace}/{claimant.name}")


def claimed_before(
    state: ClusterState, first: Claimant, second: Claimant,
    order: Callable[[Claimant], tuple[str, ...]] = claim_order,
) -> bool | None:
    """Whether ``first`` claimed before ``second`` (by ``order``); None when nobody can tell.

    Online every stored object is dated and the answer is ``order``'s, with one exception
    for claims (:func:`claim_order`): an object being created (a request the view does not
    hold) is newer than every object that exists, even one created in the same second
    whose namespace or name sorts after it. Timestamps have whole seconds, and the
    tie-break by name must not hand a name someone serves to a newcomer. (Orders that
    predict what the controller decides, such as the spec's acceptance order, keep the
    tie-break: the controller applies it.) Offline, two dated objects compare by date;
    otherwise one that is new (added by the change, or a request the view does not
    hold) is newer than one that is not, a dated object is older than an undated one of
    the same age, and two undated objects of the same age have no order: a tie that only
    a baseline or the cluster can break.
    """
    dated = (bool(first.meta.creation_timestamp), bool(second.meta.creation_timestamp))
    if not state.offline:
        if order is claim_order and _is_new(state, first) != _is_new(state, second):
            return _is_new(state, second)
        return order(first) < order(second)
    if all(dated):
        return order(first) < order(second)
    new = (_is_new(state, first), _is_new(state, second))
    if new[0] != new[1]:
        return new[1]
    if dated[0] != dated[1]:
        return dated[0]
    return None


def _is_new(state: ClusterState, claimant: Claimant) -> bool:
    key = (claimant.kind, claimant.namespace, claimant.name)
    return key in state.added or not state.contains(*key)


def first_claimant(claims: list[Claim]) -> Claim:
    """The claim made first among ``claims`` (by :func:`claim_order`)."""
    return min(claims, key=lambda c: claim_order(c.claimant))


def earlier_rivals(
    state: ClusterState, claim: Claim, *, added: bool = False, listeners: bool = True, memo: dict[Any, Any] | None = None
) -> tuple[list[Claim], list[Claim]]:
    """(claims known to be earlier, claims whose order is unknown) of other namespaces that
    overlap ``claim``'s hostname on its Gateway. ``added``: a hostname an UPDATE adds,
    which conflicts with every claimant, older or newer. ``listeners``: count tenants'
    ListenerSet listener hostnames too. ``memo``: a request's scratch space (see :func:`_candidates`)."""
    if not _may_have_rivals(state, claim, memo, listeners=listeners):
        return [], []  # the usual answer, found without building anything
    others = list(rival_claims(state, claim, memo))
    if listeners:
        others.extend(listener_claims(state, claim))
    earlier: list[Claim] = []
    unknown: list[Claim] = []
    for other in others:
        if other.namespace == claim.namespace:
            continue
        first = True if added else claimed_before(state, other.claimant, claim.claimant)
        if first:
            earlier.append(other)
        elif first is None:
            unknown.append(other)
    return earlier, unknown
