"""Hostname ownership: who else claims a hostname, and who claimed it first.

Shared by the admission rule (``hostnames/HostnameConflict``) and the audit, so both
name the same owner for the same conflict.

In the cluster the apiserver's ``creationTimestamp`` orders the claimants. Manifests
carry none, so offline the order is known only where something tells it
(:func:`claimed_before`): a live object listed with ``--cluster`` is dated, what a change
adds over its baseline (``ClusterState.added``) and a request the view does not hold are
newer than the rest, and two undated objects of the same age cannot be ordered.
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import gatewayapi as gw
from ..state.store import ClusterState


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


def claim_order(route: gw.Route) -> tuple[str, str, str, str]:
    """The order in which routes claimed their hostnames: oldest first.

    RFC 3339 UTC timestamps sort as strings; an object not created yet sorts last; ties
    are broken by namespace, kind and name so every replica picks the same owner.
    """
    return (route.meta.creation_timestamp or "~", route.namespace, route.kind, route.name)


def claimed_before(state: ClusterState, first: gw.Route, second: gw.Route) -> bool | None:
    """Whether ``first`` claimed its hostnames before ``second``; None when nobody can tell.

    Online every stored route is dated and the answer is :func:`claim_order`'s. Offline,
    two dated routes compare by date; otherwise a route that is new (added by the change,
    or a request the view does not hold) is newer than one that is not, a dated route is
    older than an undated one of the same age, and two undated routes of the same age
    have no order: a tie that only a baseline or the cluster can break.
    """
    dated = (bool(first.meta.creation_timestamp), bool(second.meta.creation_timestamp))
    if not state.offline or all(dated):
        return claim_order(first) < claim_order(second)
    new = (_is_new(state, first), _is_new(state, second))
    if new[0] != new[1]:
        return new[1]
    if dated[0] != dated[1]:
        return dated[0]
    return None


def _is_new(state: ClusterState, route: gw.Route) -> bool:
    key = (route.kind, route.namespace, route.name)
    return key in state.added or state.route(*key) is None
