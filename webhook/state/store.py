"""The cluster view: a read-only, indexed snapshot of the objects the rules need.

Only one writer changes a :class:`ClusterState`: the informer (online) or the manifest
loader (offline), both through :meth:`ClusterState.apply`, :meth:`ClusterState.remove`
and :meth:`ClusterState.replace`. The informer calls them *on the event loop thread*
(``loop.call_soon_threadsafe``), and a policy decision is a synchronous function that
never awaits, so every decision reads a consistent view without locks or copies.

What the view keeps of an object is what the rules, the audit, ``explain``, the offline
path and the reconciler read, once:

* routes, ReferenceGrants and Namespaces, the kinds a cluster holds by the thousand, are
  kept as their typed records only (:class:`~webhook.gatewayapi.Route`,
  :class:`~webhook.gatewayapi.ReferenceGrant`, :class:`~webhook.state.records.Namespace`),
  their strings interned and their identical references shared between objects.
  :meth:`ClusterState.get` and :meth:`ClusterState.objects` give them back as objects
  that read the same to every rule (``Route.from_object(state.get(...))`` is the stored
  route); what no rule reads (header and query matches, filters other than mirrors,
  weights, ports, ``status``, ``managedFields``) is not kept;
* Gateways, ListenerSets and GatewayClasses, a handful per cluster and mutated whole by
  the Gateway defaults, keep their object without ``managedFields`` and ``status``, beside
  the typed view of Gateways and ListenerSets; so do kinds the view only holds for others
  (the reconciler's Services);
* an object the view cannot read (fields of the wrong type) is kept as it came, unindexed.

Values made from the view (merged listeners, a stored route's claims, a policy's
answers per namespace) are kept by :meth:`ClusterState.derived` for as long as the kinds
they read do not change.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from .. import gatewayapi as gw
from .kinds import KINDS_BY_NAME, ROUTE_KINDS, group_of, watched_kind_of
from .records import Namespace, Shared

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


# The kinds kept as typed records only (see the module docstring).
TYPED_KINDS = frozenset({*ROUTE_KINDS, "ReferenceGrant", "Namespace"})
# What the listeners a Gateway serves are made from: its own, its ListenerSets', and the
# namespace labels that decide which sets it accepts (``derived(reads=...)``).
LISTENER_SOURCES = frozenset({"Gateway", "ListenerSet", "Namespace"})
# derived() forgets everything past this many values (a bound for values of objects since removed).
DERIVED_LIMIT = 200_000

# Index buckets: most keys (a hostname, a parent) name one object, so a bucket of one is
# the member itself (a key tuple) and only a bucket of several is a set.


def _add(index: dict[Any, Any], key: Any, value: tuple[str, ...]) -> None:
    bucket = index.get(key)
    if bucket is None:
        index[key] = value
    elif type(bucket) is set:
        bucket.add(value)
    elif bucket != value:
        index[key] = {bucket, value}


def _discard(index: dict[Any, Any], key: Any, value: tuple[str, ...]) -> None:
    bucket = index.get(key)
    if bucket is None:
        return
    if type(bucket) is set:
        bucket.discard(value)
        if len(bucket) == 1:
            index[key] = next(iter(bucket))
        elif not bucket:
            del index[key]
    elif bucket == value:
        del index[key]


def _members(bucket: Any) -> Iterable[Any]:
    if bucket is None:
        return ()
    return bucket if type(bucket) is set else (bucket,)


class ClusterState:
    """Objects by kind and key, plus the indexes the rules look up in O(1)."""

    def __init__(self, *, expected_kinds: Iterable[str] = ()) -> None:
        # kind -> key -> what the view keeps: the typed record (TYPED_KINDS), else the object
        # without managedFields and status; an object it cannot read, as it came
        self._objects: dict[str, dict[Key, Any]] = defaultdict(dict)
        self._gateways: dict[Key, gw.Gateway] = {}
        self._routes: dict[tuple[str, str, str], gw.Route] = {}
        self._namespaces: dict[str, Namespace] = {}
        self._grants_by_ns: dict[str, dict[str, gw.ReferenceGrant]] = defaultdict(dict)
        # Indexes: key -> one member, or a set of several (see _add).
        self._routes_by_hostname: dict[str, Any] = {}
        self._routes_by_parent: dict[Key, Any] = {}
        self._listenersets_by_parent: dict[Key, Any] = {}
        self._listenersets: dict[Key, gw.ListenerSet] = {}
        # (namespace, name) of a ListenerSet -> routes with a parentRef naming it
        self._routes_by_listenerset: dict[Key, Any] = {}
        # (parent kind, namespace, name) of a Gateway or ListenerSet parentRef -> (sectionName,
        # port) -> routes matching on hostnames that list none: they take the hostnames of the
        # listeners the parentRef selects (hostname ownership, rules/ownership.py)
        self._hostnameless_by_parent: dict[tuple[str, str, str], dict[tuple[str | None, int | None], Any]] = {}
        # namespace -> routes in other namespaces that reference objects in it (ReferenceGrant blast radius)
        self._routes_by_ref_namespace: dict[str, Any] = {}
        # domain suffix -> routes with a hostname strictly under it (wildcard ownership checks)
        self._routes_under_domain: dict[str, Any] = {}
        # Values equal between objects, stored once (strings are interned apart).
        self._shared = Shared()
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
        # kinds -> changes to objects of any of them, counted from the first time asked
        self._changes: dict[frozenset[str], int] = {}
        self._counted_in: dict[str, list[frozenset[str]]] = {}
        # key -> (kinds read or None for all, changes then, anchor, value)
        self._derived: dict[Hashable, tuple[frozenset[str] | None, int, object, Any]] = {}
        # False: nothing made from the view is kept, and the rules answer without their
        # compiled tables, as written (the reference the equivalence tests compare with).
        self.compiled = True

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
        self._keep(kind, key, obj)
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
            self._keep(kind, key, obj)
        if resource_version:
            self._resource_versions[kind] = resource_version
        self._touch(kind)
        gw.normalize_hostname.cache_clear()  # it would keep strings of the list's pages alive (records.own)

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
        for kinds in self._counted_in.get(kind, ()):
            self._changes[kinds] += 1

    # ------------------------------------------------------------------ indexes
    def _keep(self, kind: str, key: Key, obj: dict[str, Any]) -> None:
        objects = self._objects[kind]
        objects.pop(key, None)  # the new key's strings are the record's own (see records.own)
        kept = self._index(kind, key, obj)
        if type(kept) is not dict:
            key = ("", kept.name) if kind == "Namespace" else (kept.meta.namespace, kept.meta.name)
        objects[key] = kept

    def _index(self, kind: str, key: Key, obj: dict[str, Any]) -> Any:
        """Index one object and return what the view keeps of it. One the API would never
        serve (wrong field types) is kept as it came but left out of the indexes, so one bad
        object cannot break a whole relist."""
        try:
            record = self._index_views(kind, key, obj)
        except gw.MalformedObject as exc:
            self.rejected[(kind, *key)] = str(exc)
            log.warning("object left out of the cluster view's indexes",
                        extra={"fields": {"kind": kind, "namespace": key[0], "name": key[1], "error": str(exc)}})
            return slim(obj)
        self.rejected.pop((kind, *key), None)
        return slim(obj) if record is None else record

    def _index_views(self, kind: str, key: Key, obj: dict[str, Any]) -> Any:
        """Index one object; its typed record for a kind kept typed only, else None."""
        shared = self._shared
        if kind == "Gateway":
            self._gateways[key] = gw.Gateway.from_object(obj)
        elif kind in ROUTE_KINDS:
            route = shared.route(gw.Route.from_object(obj, kind=kind))
            rkey = (route.kind, route.namespace, route.name)
            self._routes[rkey] = route
            for hostname in route.hostnames:
                _add(self._routes_by_hostname, hostname, rkey)
                for domain in _parent_domains(hostname):
                    _add(self._routes_under_domain, domain, rkey)
            for ref in route.parent_refs:
                if ref.is_gateway:  # a ListenerSet or Service parent may share a Gateway's name
                    _add(self._routes_by_parent, ref.gateway_key, rkey)
                elif ref.is_listenerset:
                    _add(self._routes_by_listenerset, ref.gateway_key, rkey)
            for parent, selector in _hostnameless_keys(route):
                _add(self._hostnameless_by_parent.setdefault(parent, {}), selector, rkey)
            for ns in {b.namespace for b in route.backend_refs if b.namespace != key[0]}:
                _add(self._routes_by_ref_namespace, ns, rkey)
            return route
        elif kind == "ReferenceGrant":
            grant = shared.grant(gw.ReferenceGrant.from_object(obj))
            self._grants_by_ns[grant.meta.namespace][grant.meta.name] = grant
            return grant
        elif kind == "Namespace":
            namespace = Namespace.from_object(obj)
            self._namespaces[namespace.name] = namespace
            return namespace
        elif kind == "ListenerSet":
            listener_set = gw.ListenerSet.from_object(obj)
            self._listenersets[key] = listener_set
            if listener_set.parent is not None:
                _add(self._listenersets_by_parent, listener_set.parent, key)
        return None

    def _unindex(self, kind: str, key: Key) -> None:
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
                if not grants:
                    del self._grants_by_ns[key[0]]
        elif kind == "Namespace":
            self._namespaces.pop(key[1], None)
        elif kind == "ListenerSet":
            listener_set = self._listenersets.pop(key, None)
            if listener_set is not None and listener_set.parent is not None:
                _discard(self._listenersets_by_parent, listener_set.parent, key)

    # ------------------------------------------------------------------ readers
    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object as the view keeps it (a fresh copy for the kinds kept typed: see the module docstring)."""
        kept = self._objects.get(kind, {}).get((namespace or "", name))
        return kept if kept is None or type(kept) is dict else kept.to_object()

    def contains(self, kind: str, namespace: str, name: str) -> bool:
        """Whether the view holds the object (well formed or not)."""
        return (namespace or "", name) in self._objects.get(kind, {})

    def objects(self, kind: str) -> Iterator[dict[str, Any]]:
        return iter([kept if type(kept) is dict else kept.to_object() for kept in self._objects.get(kind, {}).values()])

    def count(self, kind: str) -> int:
        return len(self._objects.get(kind, {}))

    def namespace_labels(self, name: str) -> Mapping[str, str] | None:
        """A namespace's labels (read-only), or None when the namespace is not known.

        They always hold ``kubernetes.io/metadata.name``: the apiserver sets it on every
        namespace (since 1.21) and overwrites any other value a manifest gives it."""
        namespace = self._namespaces.get(name)
        return None if namespace is None else namespace.labels

    def namespace(self, name: str) -> Namespace | None:
        """What the view keeps of a Namespace (None: not known, or not readable)."""
        return self._namespaces.get(name)

    def has_namespace(self, name: str) -> bool:
        return ("", name) in self._objects.get("Namespace", {})

    def gateway_class(self, name: str) -> dict[str, Any] | None:
        return self.get("GatewayClass", "", name)

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
        if keys is None:
            return ()  # the usual answer: asked for every parent domain of every new hostname
        return tuple(self._routes[k] for k in _members(keys) if k in self._routes)

    def routes_under_domain(self, domain: str) -> tuple[gw.Route, ...]:
        """Routes with a hostname strictly under ``domain`` (what ``*.domain`` would cover)."""
        keys = _members(self._routes_under_domain.get(domain))
        return tuple(self._routes[k] for k in keys if k in self._routes)

    def routes_referencing_namespace(self, namespace: str) -> tuple[gw.Route, ...]:
        """Routes in other namespaces with a backendRef into ``namespace``."""
        keys = _members(self._routes_by_ref_namespace.get(namespace))
        return tuple(self._routes[k] for k in sorted(keys) if k in self._routes)

    def routes_attached_to(self, namespace: str, name: str) -> tuple[gw.Route, ...]:
        """Routes with a parentRef naming Gateway ``namespace/name``."""
        keys = _members(self._routes_by_parent.get((namespace, name)))
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
                keys.update(_members(by_selector.get((section, port))))
        return tuple(self._routes[k] for k in sorted(keys) if k in self._routes)

    def listenersets_of(self, namespace: str, name: str) -> tuple[dict[str, Any], ...]:
        keys = _members(self._listenersets_by_parent.get((namespace, name)))
        objs = self._objects.get("ListenerSet", {})
        return tuple(objs[k] for k in sorted(keys) if k in objs)

    def listenerset(self, namespace: str, name: str) -> gw.ListenerSet | None:
        return self._listenersets.get((namespace, name))

    def listenersets(self) -> Iterator[gw.ListenerSet]:
        return iter(list(self._listenersets.values()))

    def listenersets_for(self, namespace: str, name: str) -> tuple[gw.ListenerSet, ...]:
        """The ListenerSets whose parentRef names Gateway ``namespace/name`` (accepted or not)."""
        keys = _members(self._listenersets_by_parent.get((namespace, name)))
        return tuple(self._listenersets[k] for k in sorted(keys) if k in self._listenersets)

    def routes_attached_to_listenerset(self, namespace: str, name: str) -> tuple[gw.Route, ...]:
        """Routes with a parentRef naming ListenerSet ``namespace/name``."""
        keys = _members(self._routes_by_listenerset.get((namespace, name)))
        return tuple(self._routes[k] for k in sorted(keys) if k in self._routes)

    def changes(self, kinds: frozenset[str]) -> int:
        """How often objects of ``kinds`` changed, counted from the first time this is asked."""
        found = self._changes.get(kinds)
        if found is None:
            found = self._changes[kinds] = 0
            for kind in kinds:
                self._counted_in.setdefault(kind, []).append(kinds)
        return found

    def derived(self, key: Hashable, compute: Callable[[], T], *, reads: frozenset[str] | None = None,
                anchor: object = None) -> T:
        """``compute()``, a value made from this view only, kept until what it reads changes.

        For what many decisions need and is costly to make, such as the merged listeners
        of a Gateway with many ListenerSets. ``reads`` are the kinds ``compute`` reads
        (``None``: any kind, so any write forgets the value); ``anchor`` is an object the
        value is made from that ``key`` names by identity (a stored route, a policy): the
        value is kept for that very object only. Decisions run on one thread (the event
        loop, or the CLI's), as do the writers, so the cache needs no lock. With
        :attr:`compiled` off, nothing is kept.
        """
        if not self.compiled:
            return compute()
        stamp = self.generation if reads is None else self.changes(reads)
        found = self._derived.get(key)
        if found is not None and found[1] == stamp and found[0] == reads and found[2] is anchor:
            return found[3]  # type: ignore[no-any-return]
        value = compute()
        if len(self._derived) >= DERIVED_LIMIT:
            self._derived.clear()
        self._derived[key] = (reads, stamp, anchor, value)
        return value

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
        gw.normalize_hostname.cache_clear()  # it would keep strings of the objects' documents alive
        return state
