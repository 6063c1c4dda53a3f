"""What the cluster view keeps of the kinds a cluster holds by the thousand.

Namespaces are kept as :class:`Namespace` (labels and annotations); routes and
ReferenceGrants as their typed views, with the values many objects share stored once
(:class:`Shared`): interned strings (namespaces, names of parents and backends, field
paths, timestamps, API versions) and one instance of each equal parentRef, backend
reference and path match.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .. import gatewayapi as gw

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Namespace:
    """A Namespace as the rules read it.

    ``labels`` are those the cluster serves: the object's own, and
    ``kubernetes.io/metadata.name`` set to the name (the apiserver sets it on every
    namespace since 1.21 and overwrites any other value; manifests may omit it).
    ``written_name_label`` is the value the object itself gave that label, if any.
    """

    name: str
    labels: Mapping[str, Any]
    annotations: Mapping[str, Any]
    written_name_label: Any = None
    api_version: str = "v1"
    resource_version: str = field(default="", compare=False)

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> Namespace:
        meta = obj.get("metadata") or {}
        if not isinstance(meta, dict):
            raise gw.MalformedObject("metadata", f"expected an object, got {type(meta).__name__}")
        name = meta.get("name") or ""
        labels = meta.get("labels") or {}
        annotations = meta.get("annotations") or {}
        for where, value in (("metadata.labels", labels), ("metadata.annotations", annotations)):
            if not isinstance(value, dict):
                raise gw.MalformedObject(where, f"expected an object, got {type(value).__name__}")
        api_version = obj.get("apiVersion")
        name = _intern(name)
        return cls(
            name=name,
            labels={**_own_map(labels), gw.NAME_LABEL: name},
            annotations=_own_map(annotations),
            written_name_label=own(labels.get(gw.NAME_LABEL)),
            api_version=_intern(api_version) if isinstance(api_version, str) else "v1",
            resource_version=own(version) if type(version := meta.get("resourceVersion")) is str else "",
        )

    def to_object(self) -> dict[str, Any]:
        labels = {k: v for k, v in self.labels.items() if k != gw.NAME_LABEL}
        if self.written_name_label is not None:
            labels[gw.NAME_LABEL] = self.written_name_label
        metadata: dict[str, Any] = {"name": self.name}
        if labels:
            metadata["labels"] = labels
        if self.annotations:
            metadata["annotations"] = dict(self.annotations)
        if self.resource_version:
            metadata["resourceVersion"] = self.resource_version
        return {"apiVersion": self.api_version, "kind": "Namespace", "metadata": metadata}


def own(value: Any) -> Any:
    """A copy of a string that shares no memory with the document it was decoded from.

    A view outlives the documents it is loaded from (a list page, a manifest file); a
    string of one kept alive would keep the allocator's arena it sits in from being
    returned to the system, and so a view of 100k objects would hold most of what its
    documents took, long after they are gone."""
    return "".join((value, "")) if type(value) is str else value  # noqa: FLY002 (an f-string gives back the same object)


def _intern(value: Any) -> Any:
    return sys.intern(own(value)) if type(value) is str else value


def _own_map(values: Mapping[str, Any]) -> Mapping[str, Any]:
    return {_intern(k): own(v) for k, v in values.items()} if values else gw.core.NO_STRINGS


class Shared:
    """One instance of each value many stored objects hold alike.

    Strings go through :func:`sys.intern`; parentRefs, backend references, path matches,
    grant entries and the tuples of them go through a table that keeps the first equal
    instance. The table only grows with distinct values; past :attr:`LIMIT` it starts
    again (the values already shared stay shared).
    """

    LIMIT = 1_000_000

    def __init__(self) -> None:
        self._table: dict[Any, Any] = {}

    def one(self, value: T) -> T:
        table = self._table
        found = table.get(value)
        if found is None:
            if len(table) >= self.LIMIT:
                table.clear()
            found = table[value] = value
        return found  # type: ignore[no-any-return]

    def meta(self, meta: gw.Meta) -> gw.Meta:
        return gw.Meta(_intern(meta.namespace), own(meta.name), own(meta.uid), _intern(meta.creation_timestamp),
                       _own_map(meta.labels), _own_map(meta.annotations), own(meta.resource_version))

    def _parent(self, ref: gw.ParentRef) -> gw.ParentRef:
        found = self._table.get(ref)
        if found is None:
            found = self.one(gw.ParentRef(_intern(ref.group), _intern(ref.kind), _intern(ref.namespace),
                                          _intern(ref.name), ref.section_name and _intern(ref.section_name),
                                          ref.port, _intern(ref.field)))
        return found  # type: ignore[no-any-return]

    def _object_ref(self, ref: gw.ObjectRef) -> gw.ObjectRef:
        found = self._table.get(ref)
        if found is None:
            found = self.one(gw.ObjectRef(_intern(ref.group), _intern(ref.kind), _intern(ref.namespace),
                                          _intern(ref.name), _intern(ref.field)))
        return found  # type: ignore[no-any-return]

    def _path(self, path: gw.PathMatch) -> gw.PathMatch:
        found = self._table.get(path)
        if found is None:
            found = self.one(gw.PathMatch(_intern(path.type), _intern(path.value), _intern(path.field)))
        return found  # type: ignore[no-any-return]

    def route(self, route: gw.Route) -> gw.Route:
        return gw.Route(
            _intern(route.kind),
            self.meta(route.meta),
            tuple(map(own, route.hostnames)),
            self.one(tuple(self._parent(r) for r in route.parent_refs)),
            tuple(self._object_ref(r) for r in route.backend_refs),
            self.one(tuple(self._path(p) for p in route.paths)),
            _intern(route.api_version),
        )

    def grant(self, grant: gw.ReferenceGrant) -> gw.ReferenceGrant:
        return gw.ReferenceGrant(
            self.meta(grant.meta),
            self.one(tuple(self.one(tuple(_intern(v) for v in f)) for f in grant.from_)),
            self.one(tuple(self.one(tuple(v if v is None else _intern(v) for v in t)) for t in grant.to)),
            _intern(grant.api_version),
        )
