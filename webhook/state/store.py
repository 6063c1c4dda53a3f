"""The cluster view: a read-only, indexed snapshot of the objects the rules need.

Only one writer changes a :class:`ClusterState`: the informer (online) or the manifest
loader (offline), both through :meth:`ClusterState.apply`, :meth:`ClusterState.remove`
and :meth:`ClusterState.replace`. The informer calls them *on the event loop thread*
(``loop.call_soon_threadsafe``), and a policy decision is a synchronous function that
never awaits, so every decision reads a consistent view without locks or copies.

Objects are stored without ``metadata.managedFields`` (and, for big kinds, without
``status``): the rules never read them and they are most of an object's size.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Any, TypeVar

from .. import gatewayapi as gw
from .kinds import KINDS_BY_NAME, ROUTE_KINDS, group_of, watched_kind_of

log = logging.getLogger("routewarden.state")

Key = tuple[str, str]  # (namespace, name); namespace is "" for cluster-scoped kinds
T = TypeVar("T")


def _key(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return (meta.get("namespace") or "", meta.get("name") or "")


def slim(obj: dict[str, Any]) -> dict[str, Any]:
    """A shallow copy without managedFields and status, the parts no rule reads."""
    out = {k: v for k, v in obj.items() if k != "status"}
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        out["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    return out


def _parent_domains(hostname: str) -> list[str]:
    """``a.b.example.com`` -> ``b.example.com``, ``example.com``, ``com`` (and so for ``*.x``)."""
    labels = hostname.split(".")
    return [".".join(labels[i:]) for i in range(1, len(labels))]


def _hostnameless_keys(route: gw.Route) -> set[tuple[tuple[str, str, str], tuple[str | None, int | None]]]:
    """The (parent, (sectionName, port)) under which a route without hostnames is indexed
    (none for a route with hostnames)."""
    if route.hostnames or route.kind not in gw.HOSTNAME_ROUTE_KINDS:
        return set()
    return {((ref.kind, ref.namespace, ref.name), (ref.section_name, ref.port))
            for ref in route.parent_refs if ref.is_gateway or ref.is_listenerset}


def _discard(index: dict[Any, set[Any]], key: Any, value: Any) -> None:
    bucket = index.get(key)
    if bucket is not None:
        bucket.discard(value)
        if not bucket:
            del index[key]


class ClusterState:
    """Objects by kind and key, plus the indexes the rules look up in O(1)."""

    def __init__(self, *, expected_kinds: Iterable[str] = ()) -> None:
        self._objects: dict[str, dict[Key, dict[str, Any]]] = defaultdict(dict)
        self._gateways: dict[Key, gw.Gateway] = {}
        self._routes: dict[tuple[str, str, str], gw.Route] = {}
        self._grants_by_ns: dict[str, dict[str, gw.ReferenceGrant]] = defaultdict(dict)
        self._routes_by_hostname: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
        self._routes_by_parent: dict[Key, set[tuple[str, str, str]]] = defaultdict(set)
        self._listenersets_by_parent: dict[Key, set[Key]] = defaultdict(set)
        self._listenersets: dict[Key, gw.ListenerSet] = {}
        # (namespace, name) of a ListenerSet -> routes with a parentRef naming it
        self._routes_by_listenerset: dict[Key, set[tuple[str, str, str]]] = defaultdict(set)
        # (parent kind, namespace, name) of a Gateway or ListenerSet parentRef -> (sectionName,
        # port) -> routes matching on hostnames that list none: they take the hostnames of the
        # listeners the parentRef selects (hostname ownership, rules/ownership.py)
        self._hostnameless_by_parent: dict[tuple[str, str, str], dict[tuple[str | None, int | None],
                                                                       set[tuple[str, str, str]]]] = defaultdict(dict)
        # namespace -> routes in other namespaces that reference objects in it (ReferenceGrant blast radius)
        self._routes_by_ref_namespace: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
        # domain suffix -> routes with a hostname strictly under it (wildcard ownership checks)
        self._routes_under_domain: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
        # namespace -> labels as namespace_labels() answers them; dropped when the Namespace changes
        self._namespace_labels: dict[str, dict[str, str]] = {}
        self.offline = False
        # How messages say an object is not in this view: offline views come from manifests.
        self.missing = "is not in the cluster view (yet)"
        # Offline only: (kind, namespace, name) of the objects a change adds over its
        # baseline, newer than everything else in the view (rules/ownership.py).
        self.added: set[tuple[str, str, str]] = set()
        self.rejected: dict[tuple[str, str, str], str] = {}
        self._synced: set[str] = set()
        self._expected: set[str] = set(expected_kinds)
        self._unavailable: dict[str, str] = {}
        self._last_event: dict[str, float] = {}
        self._resource_versions: dict[str, str] = {}
        self._alive: dict[str, float] = {}
        self._created = time.monotonic()
        self.generation = 0  # bumped on every change; lets callers cache derived views
        self._derived: dict[Hashable, Any] = {}
        self._derived_generation = 0

    # ------------------------------------------------------------------ writers
    def apply(self, kind: str, obj: dict[str, Any]) -> None:
        """Insert or replace one object (a watch ADDED/MODIFIED event).

        An object whose ``apiVersion`` names another API group than ``kind``'s (an Istio
        ``networking.istio.io`` Gateway) is another object: it never replaces one here.
        """
        watched = KINDS_BY_NAME.get(kind)
        group = group_of(obj)
        if watched is not None and group is not None and group != watched.group:
            return
        key = _key(obj)
        self._unindex(kind, key)
        stored = slim(obj)
        self._objects[kind][key] = stored
        self._index(kind, key, stored)
        self._touch(kind)

    def remove(self, kind: str, namespace: str, name: str) -> None:
        """Forget one object (a watch DELETED event). Unknown objects are ignored."""
        key = (namespace or "", name)
        self._unindex(kind, key)
        self._objects[kind].pop(key, None)
        self.rejected.pop((kind, *key), None)
        self._touch(kind)

    def replace(self, kind: str, objects: Iterable[dict[str, Any]], resource_version: str = "") -> None:
        """Make ``kind`` hold exactly ``objects`` (a relist): nothing stale survives."""
        for key in list(self._objects.get(kind, {})):
            self._unindex(kind, key)
        self._objects[kind] = {}
        for obj in objects:
            key = _key(obj)
            self._unindex(kind, key)  # a key listed twice: the earlier copy must not stay indexed
            stored = slim(obj)
            self._objects[kind][key] = stored
            self._index(kind, key, stored)
        if resource_version:
            self._resource_versions[kind] = resource_version
        self._touch(kind)

    def mark_synced(self, kind: str) -> None:
        self._synced.add(kind)
        self.mark_alive(kind)
        self._unavailable.pop(kind, None)
        self._expected.add(kind)

    def mark_unavailable(self, kind: str, reason: str) -> None:
        """The kind cannot be listed (its CRD is not installed, RBAC is missing, ...)."""
        self._unavailable[kind] = reason
        self._expected.add(kind)

    def expect(self, kinds: Iterable[str]) -> None:
        self._expected.update(kinds)

    def set_resource_version(self, kind: str, resource_version: str) -> None:
        self._resource_versions[kind] = resource_version

    def _touch(self, kind: str) -> None:
        self._last_event[kind] = self._alive[kind] = time.monotonic()
        self.generation += 1

    # ------------------------------------------------------------------ indexes
    def _index(self, kind: str, key: Key, obj: dict[str, Any]) -> None:
        """Index one stored object. One the API would never serve (wrong field types) is
        kept but left out of the indexes, so one bad object cannot break a whole relist."""
        if kind == "Namespace":
            self._namespace_labels.pop(key[1], None)
        try:
            self._index_views(kind, key, obj)
        except gw.MalformedObject as exc:
            self.rejected[(kind, *key)] = str(exc)
            log.warning("object left out of the cluster view's indexes",
                        extra={"fields": {"kind": kind, "namespace": key[0], "name": key[1], "error": str(exc)}})
        else:
            self.rejected.pop((kind, *key), None)

    def _index_views(self, kind: str, key: Key, obj: dict[str, Any]) -> None:
        if kind == "Gateway":
            gateway = gw.Gateway.from_object(obj)
            self._gateways[key] = gateway
        elif kind in ROUTE_KINDS:
            route = gw.Route.from_object(obj, kind=kind)
            rkey = (kind, key[0], key[1])
            self._routes[rkey] = route
            for hostname in route.hostnames:
                self._routes_by_hostname[hostname].add(rkey)
                for domain in _parent_domains(hostname):
                    self._routes_under_domain[domain].add(rkey)
            for ref in route.parent_refs:
                if ref.is_gateway:  # a ListenerSet or Service parent may share a Gateway's name
                    self._routes_by_parent[ref.gateway_key].add(rkey)
                elif ref.is_listenerset:
                    self._routes_by_listenerset[ref.gateway_key].add(rkey)
            for parent, selector in _hostnameless_keys(route):
                self._hostnameless_by_parent[parent].setdefault(selector, set()).add(rkey)
            for ns in {b.namespace for b in route.backend_refs if b.namespace != key[0]}:
                self._routes_by_ref_namespace[ns].add(rkey)
        elif kind == "ReferenceGrant":
            self._grants_by_ns[key[0]][key[1]] = gw.ReferenceGrant.from_object(obj)
        elif kind == "ListenerSet":
            listener_set = gw.ListenerSet.from_object(obj)
            self._listenersets[key] = listener_set
            if listener_set.parent is not None:
                self._listenersets_by_parent[listener_set.parent].add(key)

    def _unindex(self, kind: str, key: Key) -> None:
        if kind == "Namespace":
            self._namespace_labels.pop(key[1], None)
        old = self._objects.get(kind, {}).get(key)
        if old is None:
            return
        if kind == "Gateway":
            self._gateways.pop(key, None)
        elif kind in ROUTE_KINDS:
            rkey = (kind, key[0], key[1])
            route = self._routes.pop(rkey, None)
            if route is not None:
                for hostname in route.hostnames:
                    _discard(self._routes_by_hostname, hostname, rkey)
                    for domain in _parent_domains(hostname):
                        _discard(self._routes_under_domain, domain, rkey)
                for ref in route.parent_refs:
                    if ref.is_gateway:
                        _discard(self._routes_by_parent, ref.gateway_key, rkey)
                    elif ref.is_listenerset:
                        _discard(self._routes_by_listenerset, ref.gateway_key, rkey)
                for parent, selector in _hostnameless_keys(route):
                    by_selector = self._hostnameless_by_parent.get(parent)
                    if by_selector is not None:
                        _discard(by_selector, selector, rkey)
                        if not by_selector:
                            del self._hostnameless_by_parent[parent]
                for ns in {b.namespace for b in route.backend_refs if b.namespace != key[0]}:
                    _discard(self._routes_by_ref_namespace, ns, rkey)
        elif kind == "ReferenceGrant":
            grants = self._grants_by_ns.get(key[0])
            if grants is not None:
                grants.pop(key[1], None)
        elif kind == "ListenerSet":
            listener_set = self._listenersets.pop(key, None)
            if listener_set is not None and listener_set.parent is not None:
                _discard(self._listenersets_by_parent, listener_set.parent, key)

    # ------------------------------------------------------------------ readers
    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self._objects.get(kind, {}).get((namespace or "", name))

    def objects(self, kind: str) -> Iterator[dict[str, Any]]:
        return iter(list(self._objects.get(kind, {}).values()))

    def count(self, kind: str) -> int:
        return len(self._objects.get(kind, {}))

    def namespace_labels(self, name: str) -> dict[str, str] | None:
        """A namespace's labels, or None when the namespace is not known."""
        ns = self._objects.get("Namespace", {}).get(("", name))
        if ns is None:
            return None
        labels = (ns.get("metadata") or {}).get("labels") or {}
        # The apiserver sets this label on every namespace (since 1.21); manifests may not.
        # The apiserver also overwrites any other value a manifest gives it, so the name wins.
        return {**labels, "kubernetes.io/metadata.name": name}

    def has_namespace(self, name: str) -> bool:
        return ("", name) in self._objects.get("Namespace", {})

    def gateway_class(self, name: str) -> dict[str, Any] | None:
        return self._objects.get("GatewayClass", {}).get(("", name))

    def gateway(self, namespace: str, name: str) -> gw.Gateway | None:
        return self._gateways.get((namespace, name))

    def gateways(self) -> Iterator[gw.Gateway]:
        return iter(list(self._gateways.values()))

    def reference_grants(self, namespace: str) -> tuple[gw.ReferenceGrant, ...]:
        """ReferenceGrants that live in ``namespace`` (the namespace being referred to)."""
        return tuple(self._grants_by_ns.get(namespace, {}).values())

    def route(self, kind: str, namespace: str, name: str) -> gw.Route | None:
        return self._routes.get((kind, namespace, name))

    def routes(self) -> Iterator[gw.Route]:
        return iter(list(self._routes.values()))

    def routes_with_hostname(self, hostname: str) -> tuple[gw.Route, ...]:
        """Routes that list exactly ``hostname`` (wildcards are matched as written)."""
        keys = self._routes_by_hostname.get(hostname)
        if not keys:
            return ()  # the usual answer: asked for every parent domain of every new hostname
        return tuple(self._routes[k] for k in keys if k in self._routes)

    def routes_under_domain(self, domain: str) -> tuple[gw.Route, ...]:
        """Routes with a hostname strictly under ``domain`` (what ``*.domain`` would cover)."""
        keys = self._routes_under_domain.get(domain, ())
        return tuple(self._routes[k] for k in keys if k in self._routes)

    def routes_referencing_namespace(self, namespace: str) -> tuple[gw.Route, ...]:
        """Routes in other namespaces with a backendRef into ``namespace``."""
        keys = self._routes_by_ref_namespace.get(namespace, ())
        return tuple(self._routes[k] for k in sorted(keys) if k in self._routes)

    def routes_attached_to(self, namespace: str, name: str) -> tuple[gw.Route, ...]:
        """Routes with a parentRef naming Gateway ``namespace/name``."""
        keys = self._routes_by_parent.get((namespace, name), ())
        return tuple(self._routes[k] for k in sorted(keys) if k in self._routes)

    def has_routes_without_hostnames(self, kind: str, namespace: str, name: str) -> bool:
        """Whether some route that lists no hostnames names ``kind`` ``namespace/name`` as a parent."""
        return bool(self._hostnameless_by_parent.get((kind, namespace, name)))

    def routes_without_hostnames(self, kind: str, namespace: str, name: str, listener: gw.Listener) -> tuple[gw.Route, ...]:
        """Routes that list no hostnames (of the kinds that match on them) with a parentRef to
        ``kind`` (Gateway or ListenerSet) ``namespace/name`` that selects ``listener``: four
        lookups, by neither, either or both of its name and port."""
        by_selector = self._hostnameless_by_parent.get((kind, namespace, name))
        if not by_selector:
            return ()  # the usual answer: asked for every listener whose hostname a claim overlaps
        keys: set[tuple[str, str, str]] = set()
        for section in (None, listener.name):
            for port in (None, listener.port) if listener.port is not None else (None,):
                keys.update(by_selector.get((section, port), ()))
        return tuple(self._routes[k] for k in sorted(keys) if k in self._routes)

    def listenersets_of(self, namespace: str, name: str) -> tuple[dict[str, Any], ...]:
        keys = self._listenersets_by_parent.get((namespace, name), ())
        objs = self._objects.get("ListenerSet", {})
        return tuple(objs[k] for k in sorted(keys) if k in objs)

    def listenerset(self, namespace: str, name: str) -> gw.ListenerSet | None:
        return self._listenersets.get((namespace, name))

    def listenersets(self) -> Iterator[gw.ListenerSet]:
        return iter(list(self._listenersets.values()))

    def listenersets_for(self, namespace: str, name: str) -> tuple[gw.ListenerSet, ...]:
        """The ListenerSets whose parentRef names Gateway ``namespace/name`` (accepted or not)."""
        keys = self._listenersets_by_parent.get((namespace, name), ())
        return tuple(self._listenersets[k] for k in sorted(keys) if k in self._listenersets)

    def routes_attached_to_listenerset(self, namespace: str, name: str) -> tuple[gw.Route, ...]:
        """Routes with a parentRef naming ListenerSet ``namespace/name``."""
        keys = self._routes_by_listenerset.get((namespace, name), ())
        return tuple(self._routes[k] for k in sorted(keys) if k in self._routes)

    def derived(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``, a value made from this view only, kept until the view changes.

        For what many decisions need and is costly to make, such as the merged listeners
        of a Gateway with many ListenerSets. Decisions run on one thread (the event loop,
        or the CLI's), as do the writers, so the cache needs no lock.
        """
        if self._derived_generation != self.generation:
            self._derived.clear()
            self._derived_generation = self.generation
        if key not in self._derived:
            self._derived[key] = compute()
        return self._derived[key]

    # ------------------------------------------------------------------ freshness
    def is_synced(self, kind: str) -> bool:
        return kind in self._synced

    @property
    def synced(self) -> bool:
        """Every expected kind has been listed once (unavailable kinds do not block)."""
        return all(k in self._synced or k in self._unavailable for k in self._expected)

    @property
    def expected_kinds(self) -> frozenset[str]:
        return frozenset(self._expected)

    def unavailable(self) -> dict[str, str]:
        return dict(self._unavailable)

    def last_event_age(self, kind: str, now: float | None = None) -> float | None:
        """Seconds since the last change to ``kind`` (None when never seen)."""
        at = self._last_event.get(kind)
        if at is None:
            return None
        return (time.monotonic() if now is None else now) - at

    def view_age(self, now: float | None = None) -> float:
        """Seconds since the least recently confirmed watched kind was last known current.

        The informer confirms a kind on every list, event and bookmark, and whenever the
        apiserver resumes its watch, which it asks for at least once per confirmation
        interval (see :mod:`webhook.freshness`). So a healthy kind stays younger than that
        however quiet it is, and the view ages only while the apiserver does not answer.
        Kinds that cannot be listed are left out. An offline view is never stale.
        """
        if self.offline or not self._expected:
            return 0.0
        now = time.monotonic() if now is None else now
        ages = [self.confirmed_age(k, now) for k in self._expected if k not in self._unavailable]
        return max(ages, default=0.0)

    def confirmed_age(self, kind: str, now: float | None = None) -> float:
        """Seconds since ``kind`` was last known current (since the view was made, if never)."""
        if self.offline:
            return 0.0
        return (time.monotonic() if now is None else now) - self._alive.get(kind, self._created)

    def mark_alive(self, kind: str, at: float | None = None) -> None:
        self._alive[kind] = time.monotonic() if at is None else at

    def resource_version(self, kind: str) -> str:
        return self._resource_versions.get(kind, "")

    @classmethod
    def from_objects(cls, objects: Iterable[dict[str, Any]]) -> ClusterState:
        """An offline view: every known kind counts as synced."""
        state = cls()
        state.offline = True
        state.missing = "is not in the manifests"
        for obj in objects:
            watched = watched_kind_of(obj)
            if watched is not None:
                state.apply(watched.kind, obj)
        for kind in KINDS_BY_NAME:
            state.mark_synced(kind)
        return state
