"""ReferenceGrants: which cross-namespace references they permit (``RefNotPermitted``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .core import Meta, _list, _map, _opt_str
from .references import ObjectRef


@dataclass(frozen=True, slots=True)
class ReferenceGrant:
    meta: Meta
    from_: tuple[tuple[str, str, str], ...]  # (group, kind, namespace)
    to: tuple[tuple[str, str, str | None], ...]  # (group, kind, name or None)
    api_version: str = field(default="", compare=False)  # as it was read (any served version)

    @classmethod
    def from_object(cls, obj: Mapping[str, Any], *, namespace: str = "") -> ReferenceGrant:
        meta = Meta.from_object(obj, default_namespace=namespace)
        spec = _map(obj.get("spec"), "spec")
        froms = []
        for i, f in enumerate(_list(spec.get("from"), "spec.from")):
            at = f"spec.from[{i}]"
            f = _map(f, at)
            froms.append(
                (
                    _opt_str(f.get("group"), f"{at}.group") or "",
                    _opt_str(f.get("kind"), f"{at}.kind") or "",
                    _opt_str(f.get("namespace"), f"{at}.namespace") or "",
                )
            )
        tos = []
        for i, t in enumerate(_list(spec.get("to"), "spec.to")):
            at = f"spec.to[{i}]"
            t = _map(t, at)
            tos.append(
                (
                    _opt_str(t.get("group"), f"{at}.group") or "",
                    _opt_str(t.get("kind"), f"{at}.kind") or "",
                    _opt_str(t.get("name"), f"{at}.name") or None,
                )
            )
        api_version = obj.get("apiVersion")
        return cls(meta, tuple(froms), tuple(tos), api_version if isinstance(api_version, str) else "")

    def to_object(self) -> dict[str, Any]:
        """An object :meth:`from_object` reads as this grant."""
        return {
            "apiVersion": self.api_version or "gateway.networking.k8s.io/v1beta1",
            "kind": "ReferenceGrant",
            "metadata": self.meta.to_object(),
            "spec": {
                "from": [{"group": g, "kind": k, "namespace": n} for g, k, n in self.from_],
                "to": [{"group": g, "kind": k, **({"name": n} if n else {})} for g, k, n in self.to],
            },
        }

    def permits(self, *, from_group: str, from_kind: str, from_namespace: str, to: ObjectRef) -> bool:
        """Whether this grant (living in ``to.namespace``) allows the reference."""
        if self.meta.namespace != to.namespace:
            return False
        if (from_group, from_kind, from_namespace) not in self.from_:
            return False
        return any(g == to.group and k == to.kind and (n is None or n == to.name) for g, k, n in self.to)

    def describe(self) -> str:
        return f"ReferenceGrant {self.meta.namespace}/{self.meta.name}"


def reference_permitted(
    grants: Iterable[ReferenceGrant], *, from_group: str, from_kind: str, from_namespace: str, to: ObjectRef
) -> ReferenceGrant | None | bool:
    """True for a same-namespace reference, the permitting grant, or None when not permitted."""
    if to.namespace == from_namespace:
        return True
    for grant in grants:
        if grant.permits(from_group=from_group, from_kind=from_kind, from_namespace=from_namespace, to=to):
            return grant
    return None
