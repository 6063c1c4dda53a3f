"""References to other objects: parentRefs and object references (backendRefs, certificateRefs), with their defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .core import CORE_GROUP, GROUP, MalformedObject, _map, _opt_int, _opt_str


@dataclass(frozen=True, slots=True)
class ParentRef:
    group: str
    kind: str
    namespace: str
    name: str
    section_name: str | None = None
    port: int | None = None
    field: str = ""

    @property
    def gateway_key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def is_gateway(self) -> bool:
        return self.group == GROUP and self.kind == "Gateway"

    @property
    def is_listenerset(self) -> bool:
        return self.group == GROUP and self.kind == "ListenerSet"

    def describe(self) -> str:
        text = f"{self.kind} {self.namespace}/{self.name}"
        if self.section_name:
            text += f" sectionName {self.section_name}"
        if self.port is not None:
            text += f" port {self.port}"
        return text

    @property
    def subject(self) -> str:
        """The parent this ref selects, without its place in the list: a finding's subject."""
        return f"{self.group}/{self.describe()}"

    def to_object(self) -> dict[str, Any]:
        """The parentRef as :func:`parse_parent_ref` reads it back, defaults written out."""
        out: dict[str, Any] = {"group": self.group, "kind": self.kind, "namespace": self.namespace, "name": self.name}
        if self.section_name is not None:
            out["sectionName"] = self.section_name
        if self.port is not None:
            out["port"] = self.port
        return out


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """A reference to another object (a backendRef, certificateRef, ...) from ``from_kind``."""

    group: str
    kind: str
    namespace: str
    name: str
    field: str = ""

    def describe(self) -> str:
        kind = self.kind if not self.group else f"{self.kind}.{self.group}"
        return f"{kind} {self.namespace}/{self.name}"

    @property
    def subject(self) -> str:
        """The object referred to, without the reference's place in the list: a finding's subject."""
        return self.describe()

    def to_object(self) -> dict[str, Any]:
        """The reference as :func:`parse_object_ref` reads it back, defaults written out."""
        return {"group": self.group, "kind": self.kind, "namespace": self.namespace, "name": self.name}


def _field_str(m: Mapping[str, Any], key: str, where: str) -> str | None:
    """``m[key]`` as an optional string. The error's path ``where.key`` is built only for
    an error: references are parsed on every review, and their paths are rarely needed."""
    value = m.get(key)
    if value is None or isinstance(value, str):
        return value
    return _opt_str(value, f"{where}.{key}")


def parse_parent_ref(value: Any, *, route_namespace: str, where: str) -> ParentRef:
    m = value if isinstance(value, dict) else _map(value, where)
    name = _field_str(m, "name", where)
    if not name:
        raise MalformedObject(f"{where}.name", "is required")
    group = _field_str(m, "group", where)
    port = m.get("port")
    return ParentRef(
        group=GROUP if group is None else group,
        kind=_field_str(m, "kind", where) or "Gateway",
        namespace=_field_str(m, "namespace", where) or route_namespace,
        name=name,
        section_name=_field_str(m, "sectionName", where) or None,
        port=None if port is None else _opt_int(port, f"{where}.port"),
        field=where,
    )


def parse_object_ref(
    value: Any, *, default_namespace: str, default_kind: str, default_group: str = CORE_GROUP, where: str
) -> ObjectRef:
    m = value if isinstance(value, dict) else _map(value, where)
    name = _field_str(m, "name", where)
    if not name:
        raise MalformedObject(f"{where}.name", "is required")
    group = _field_str(m, "group", where)
    kind = _field_str(m, "kind", where)
    namespace = _field_str(m, "namespace", where)
    return ObjectRef(
        group=default_group if group is None else group,
        kind=kind or default_kind,
        namespace=namespace or default_namespace,
        name=name,
        field=where,
    )
