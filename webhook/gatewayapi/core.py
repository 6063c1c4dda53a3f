"""The API group, the kinds, the error for malformed objects, typed field readers and object metadata."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

GROUP = "gateway.networking.k8s.io"
CORE_GROUP = ""
NAME_LABEL = "kubernetes.io/metadata.name"

ROUTE_KINDS = frozenset({"HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute"})
# Route kinds whose hostnames take part in listener matching.
HOSTNAME_ROUTE_KINDS = frozenset({"HTTPRoute", "GRPCRoute", "TLSRoute"})

# The route kinds a listener accepts when ``allowedRoutes.kinds`` is empty, by protocol.
# These are the kinds every conformant implementation accepts for the core protocols.
DEFAULT_KINDS_BY_PROTOCOL: Mapping[str, frozenset[str]] = {
    "HTTP": frozenset({"HTTPRoute", "GRPCRoute"}),
    "HTTPS": frozenset({"HTTPRoute", "GRPCRoute"}),
    "TLS": frozenset({"TLSRoute"}),
    "TCP": frozenset({"TCPRoute"}),
    "UDP": frozenset({"UDPRoute"}),
}
# Any other protocol the CRD accepts (``example.com/custom``, or an unprefixed one such as
# Istio's ``HBONE``) is implementation-specific: which kinds it accepts without
# ``allowedRoutes.kinds`` is the implementation's to say.
CORE_PROTOCOLS = frozenset(DEFAULT_KINDS_BY_PROTOCOL)
# The protocols whose listeners match on hostnames; the spec ignores ``hostname`` for others.
HOSTNAME_PROTOCOLS = frozenset({"HTTP", "HTTPS", "TLS"})


# The same as (group, kind) pairs, built once (a listener is asked on every attachment check).
_DEFAULT_ACCEPTED_KINDS: Mapping[str, frozenset[tuple[str, str]]] = {
    protocol: frozenset((GROUP, k) for k in kinds) for protocol, kinds in DEFAULT_KINDS_BY_PROTOCOL.items()
}


class MalformedObject(ValueError):
    """A field does not have the type the API defines (only possible before schema validation)."""

    def __init__(self, field_path: str, message: str) -> None:
        super().__init__(f"{field_path}: {message}")
        self.field = field_path


# --------------------------------------------------------------------------- reading helpers
def _map(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedObject(where, f"expected an object, got {type(value).__name__}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedObject(where, f"expected a list, got {type(value).__name__}")
    return value


def _opt_str(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise MalformedObject(where, f"expected a string, got {type(value).__name__}")
    return value


def _str(value: Any, where: str) -> str:
    """A list item that must be a string (``null`` is a wrong type there, not an omission)."""
    if not isinstance(value, str):
        raise MalformedObject(where, f"expected a string, got {type(value).__name__}")
    return value


def _opt_int(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedObject(where, f"expected an integer, got {type(value).__name__}")
    return value


# The labels or annotations of an object that has none: one read-only mapping for all of them.
NO_STRINGS: Mapping[str, str] = MappingProxyType({})


def _str_map(value: Any, where: str) -> Mapping[str, str]:
    m = _map(value, where)
    if not m:
        return NO_STRINGS
    for k, v in m.items():
        if not isinstance(v, str):
            raise MalformedObject(f"{where}.{k}", f"expected a string, got {type(v).__name__}")
    return dict(m)


@dataclass(frozen=True, slots=True)
class Meta:
    namespace: str
    name: str
    uid: str = ""
    creation_timestamp: str = ""
    labels: Mapping[str, str] = field(default_factory=lambda: NO_STRINGS)
    annotations: Mapping[str, str] = field(default_factory=lambda: NO_STRINGS)
    # Which version of the object this is (no rule reads it; the view's currency does).
    resource_version: str = field(default="", compare=False)

    @classmethod
    def from_object(cls, obj: Mapping[str, Any], *, default_namespace: str = "") -> Meta:
        meta = _map(obj.get("metadata"), "metadata")
        return cls(
            namespace=_opt_str(meta.get("namespace"), "metadata.namespace") or default_namespace,
            name=_opt_str(meta.get("name"), "metadata.name") or "",
            uid=_opt_str(meta.get("uid"), "metadata.uid") or "",
            creation_timestamp=_opt_str(meta.get("creationTimestamp"), "metadata.creationTimestamp") or "",
            labels=_str_map(meta.get("labels"), "metadata.labels"),
            annotations=_str_map(meta.get("annotations"), "metadata.annotations"),
            resource_version=_version(meta.get("resourceVersion")),
        )

    def to_object(self) -> dict[str, Any]:
        """``metadata`` as :meth:`from_object` reads it back (fields it left empty are left out)."""
        out: dict[str, Any] = {"name": self.name}
        if self.namespace:
            out["namespace"] = self.namespace
        if self.uid:
            out["uid"] = self.uid
        if self.creation_timestamp:
            out["creationTimestamp"] = self.creation_timestamp
        if self.labels:
            out["labels"] = dict(self.labels)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.resource_version:
            out["resourceVersion"] = self.resource_version
        return out


def _version(value: Any) -> str:
    """A resourceVersion as kept: the apiserver's string, else nothing (no rule reads it)."""
    return value if type(value) is str else ""
