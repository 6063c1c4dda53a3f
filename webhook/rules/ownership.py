"""Hostname ownership: who else claims a hostname, and who claimed it first.

Shared by the admission rule (``hostnames/HostnameConflict``) and the audit, so both
name the same owner for the same conflict.
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
