"""Which generated Services a change in the cluster or in the policies may change. Pure.

The reconciler queues *targets*: a Gateway (every Service generated for it) or one
Service. What each change reaches:

==========================  =====================================================
change                      targets
==========================  =====================================================
ServicePolicy (reload)      every Gateway that a changed policy matches, before or after
Gateway                     that Gateway
ListenerSet                 its parent Gateway, before and after
route (any kind)            the Gateways it names as parents, before and after (a
                            ListenerSet parent stands for its Gateway)
Service                     that Service
Namespace                   its Gateways, and the Gateways its routes attach to
                            (namespace labels decide policy matches and allowedRoutes)
a relist (``SYNCED``)       everything
==========================  =====================================================

"Before and after" matters: a route that moves from one Gateway to another, or is
deleted, changes the hostnames of the Gateway it left. The caller remembers what a
route reached last time (:func:`targets_of`) and unions it with what it reaches now.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .. import gatewayapi as gw
from ..mutation import describe_service
from ..mutation.policy import ServicePolicy, matching
from ..policy.model import PolicySet
from ..state.store import ClusterState

Target = tuple[str, str, str]  # ("Gateway" | "Service", namespace, name)
EVERYTHING: Target = ("*", "", "")  # a full resync


def gateway(namespace: str, name: str) -> Target:
    return ("Gateway", namespace, name)


def service(namespace: str, name: str) -> Target:
    return ("Service", namespace, name)


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _listenerset_gateway(namespace: str, name: str, state: ClusterState) -> set[Target]:
    parent = gw.listenerset_parent(state.get("ListenerSet", namespace, name) or {})
    return {gateway(*parent)} if parent else set()


def _route_parents(obj: Mapping[str, Any], kind: str, state: ClusterState) -> set[Target]:
    try:
        route = gw.Route.from_object(obj, kind=kind)
    except gw.MalformedObject:
        return set()
    out: set[Target] = set()
    for ref in route.parent_refs:
        if ref.is_gateway:
            out.add(gateway(*ref.gateway_key))
        elif ref.is_listenerset:
            out |= _listenerset_gateway(ref.namespace, ref.name, state)
    return out


def _namespace_gateways(namespace: str, state: ClusterState) -> set[Target]:
    out = {gateway(g.namespace, g.name) for g in state.gateways() if g.namespace == namespace}
    for route in state.routes():
        if route.namespace == namespace:
            out |= {gateway(*ref.gateway_key) for ref in route.parent_refs if ref.is_gateway}
    return out


def targets_of(kind: str, obj: Mapping[str, Any] | None, state: ClusterState) -> set[Target]:
    """What one version of an object (``None``: a relist of ``kind``) reaches."""
    if obj is None:
        return {EVERYTHING}
    namespace, name = _key(obj)
    if kind == "Gateway":
        return {gateway(namespace, name)}
    if kind == "Service":
        return {service(namespace, name)}
    if kind == "ListenerSet":
        try:
            parent = gw.listenerset_parent(obj)
        except gw.MalformedObject:
            parent = None
        return {gateway(*parent)} if parent else set()
    if kind in gw.ROUTE_KINDS:
        return _route_parents(obj, kind, state)
    if kind == "Namespace":
        return _namespace_gateways(name, state)
    return set()


def affected(kind: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None,
             state: ClusterState) -> set[Target]:
    """Targets a change from ``old`` to ``new`` (either may be None) reaches."""
    return {t for version in (old, new) if version is not None for t in targets_of(kind, version, state)}


def _changed_policies(old: PolicySet, new: PolicySet) -> list[ServicePolicy]:
    before = {p.name: p for p in old.services if isinstance(p, ServicePolicy)}
    after = {p.name: p for p in new.services if isinstance(p, ServicePolicy)}
    return [p for name in before.keys() | after.keys()
            for p in (before.get(name), after.get(name)) if p is not None and before.get(name) != after.get(name)]


def policy_targets(old: PolicySet, new: PolicySet, state: ClusterState) -> set[Target]:
    """The Gateways that a ServicePolicy added, removed or changed between two policy sets matches."""
    changed = _changed_policies(old, new)
    if not changed:
        return set()
    return {gateway(g.namespace, g.name) for g in state.gateways()
            if matching(tuple(changed), g, state.namespace_labels(g.namespace))}


def services_by_gateway(state: ClusterState, services: ClusterState) -> dict[tuple[str, str], set[Target]]:
    """The Services ``services`` holds, by the Gateway the mutation's identification names in ``state``."""
    out: dict[tuple[str, str], set[Target]] = {}
    for obj in services.objects("Service"):
        try:
            _, owner, _ = describe_service(obj, state)
        except gw.MalformedObject:
            continue
        if owner is not None:
            out.setdefault(owner, set()).add(service(*_key(obj)))
    return out


def expand(targets: Iterable[Target], state: ClusterState, services: ClusterState) -> list[tuple[str, str]]:
    """The Services (namespace, name) of ``services`` that ``targets`` stand for, sorted."""
    targets = set(targets)
    if EVERYTHING in targets:
        return sorted(_key(obj) for obj in services.objects("Service"))
    by_gateway = services_by_gateway(state, services) if any(t[0] == "Gateway" for t in targets) else {}
    out: set[tuple[str, str]] = set()
    for kind, namespace, name in targets:
        if kind == "Service":
            out.add((namespace, name))
        elif kind == "Gateway":
            out |= {(ns, n) for _, ns, n in by_gateway.get((namespace, name), ())}
    return sorted(out)
