"""Routes of every kind and served version, with their hostnames, parentRefs and backend references."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .core import Meta, _list, _map, _opt_str, _str
from .hostnames import normalize_hostname
from .paths import PathMatch, route_paths
from .references import ObjectRef, ParentRef, parse_object_ref, parse_parent_ref


@dataclass(frozen=True, slots=True)
class Route:
    kind: str
    meta: Meta
    hostnames: tuple[str, ...]
    parent_refs: tuple[ParentRef, ...]
    backend_refs: tuple[ObjectRef, ...]
    # The path matches of its rules (the whole host for kinds without paths): see ``paths``.
    paths: tuple[PathMatch, ...] = ()

    @property
    def namespace(self) -> str:
        return self.meta.namespace

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.meta.namespace, self.meta.name)

    def describe(self) -> str:
        return f"{self.kind} {self.meta.namespace}/{self.meta.name}"

    @property
    def gateway_keys(self) -> frozenset[tuple[str, str]]:
        """(namespace, name) of the Gateways the route names as parents. A parent of
        another kind is never a Gateway, whatever its name: a Service (a GAMMA mesh
        route's parent) named like a Gateway shares nothing with it."""
        return frozenset(ref.gateway_key for ref in self.parent_refs if ref.is_gateway)

    @classmethod
    def from_object(cls, obj: Mapping[str, Any], *, kind: str | None = None, namespace: str = "") -> Route:
        """Parse any route kind in any served version (v1, v1beta1, v1alpha2, v1alpha3)."""
        kind = kind or _opt_str(obj.get("kind"), "kind") or ""
        meta = Meta.from_object(obj, default_namespace=namespace)
        spec = _map(obj.get("spec"), "spec")
        hostnames = tuple(
            normalize_hostname(h if isinstance(h, str) else _str(h, f"spec.hostnames[{i}]"))
            for i, h in enumerate(_list(spec.get("hostnames"), "spec.hostnames"))
        )
        parents = tuple(
            parse_parent_ref(p, route_namespace=meta.namespace, where=f"spec.parentRefs[{i}]")
            for i, p in enumerate(_list(spec.get("parentRefs"), "spec.parentRefs"))
        )
        return cls(kind, meta, hostnames, parents, tuple(_route_backend_refs(spec, meta.namespace)),
                   route_paths(spec, kind))


def _mirror_ref(filters: Any, *, namespace: str, where: str) -> Iterator[ObjectRef]:
    """backendRefs inside filters: requestMirror and (experimental channel) externalAuth.

    Both are BackendObjectReferences, and "All cross-namespace references in Gateway API
    (with the exception of cross-namespace Gateway-route attachment) require a ReferenceGrant."
    """
    for j, f in enumerate(filters if isinstance(filters, list) else _list(filters, where)):
        f = f if isinstance(f, dict) else _map(f, f"{where}[{j}]")
        for filter_field in ("requestMirror", "externalAuth"):
            config = f.get(filter_field)
            if config is not None:
                at = f"{where}[{j}].{filter_field}.backendRef"
                ref = _map(config, f"{where}[{j}].{filter_field}").get("backendRef")
                if ref is not None:
                    yield parse_object_ref(ref, default_namespace=namespace, default_kind="Service", where=at)


def _route_backend_refs(spec: Mapping[str, Any], namespace: str) -> list[ObjectRef]:
    # Paths of the parts that are well formed are only built when they are kept (a ref's
    # field) or reported (an error): this runs on every route review.
    out: list[ObjectRef] = []
    for i, rule in enumerate(_list(spec.get("rules"), "spec.rules")):
        rule = rule if isinstance(rule, dict) else _map(rule, f"spec.rules[{i}]")
        refs = rule.get("backendRefs")
        if refs is not None:
            for k, ref in enumerate(refs if isinstance(refs, list) else _list(refs, f"spec.rules[{i}].backendRefs")):
                at = f"spec.rules[{i}].backendRefs[{k}]"
                out.append(parse_object_ref(ref, default_namespace=namespace, default_kind="Service", where=at))
                filters = _map(ref, at).get("filters")
                if filters is not None:
                    out.extend(_mirror_ref(filters, namespace=namespace, where=f"{at}.filters"))
        filters = rule.get("filters")
        if filters is not None:
            out.extend(_mirror_ref(filters, namespace=namespace, where=f"spec.rules[{i}].filters"))
    return out
