"""Routes of every kind and served version, with their hostnames, parentRefs and backend references."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .core import GROUP, Meta, _list, _map, _opt_str, _str
from .hostnames import normalize_hostname
from .paths import PathMatch, path_object, route_paths
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
    # The apiVersion it was read in (not compared: the same route in any served version).
    api_version: str = field(default="", compare=False)

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
        api_version = obj.get("apiVersion")
        return cls(kind, meta, hostnames, parents, tuple(_route_backend_refs(spec, meta.namespace)),
                   route_paths(spec, kind), api_version if isinstance(api_version, str) else "")

    def to_object(self) -> dict[str, Any]:
        """An object :meth:`from_object` reads as this route (``from_object(r.to_object()) == r``).

        What the rules read, at the places they read it (so every field path in a finding
        is the same): hostnames, parentRefs, the backend references (mirrors and external
        auth included) and the path matches of the rules. What no rule reads (header and
        query matches, other filters, weights, ports, timeouts) is not in it.
        """
        spec: dict[str, Any] = {}
        if self.hostnames:
            spec["hostnames"] = list(self.hostnames)
        if self.parent_refs:
            spec["parentRefs"] = [ref.to_object() for ref in self.parent_refs]
        obj = {"apiVersion": self.api_version or f"{GROUP}/v1", "kind": self.kind, "metadata": self.meta.to_object(),
               "spec": spec}
        for ref in self.backend_refs:
            _place(obj, ref.field, ref.to_object())
        for path in self.paths:
            placed = path_object(path, self.kind)
            if placed is not None:
                _place(obj, *placed)
        return obj


def _place(root: dict[str, Any], where: str, value: dict[str, Any]) -> None:
    """Merge ``value`` into the object at ``where`` (``spec.rules[2].backendRefs[0]``) in
    ``root``, making the objects and list items on the way (an item before it: ``{}``)."""
    node = root
    for step in where.split("."):
        name, _, index = step.partition("[")
        if not index:
            node = node.setdefault(name, {})
            continue
        items = node.setdefault(name, [])
        position = int(index[:-1])
        while len(items) <= position:
            items.append({})
        node = items[position]
    node.update(value)

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
    rules = spec.get("rules")
    for i, rule in enumerate(rules if type(rules) is list else _list(rules, "spec.rules")):
        rule = rule if type(rule) is dict else _map(rule, f"spec.rules[{i}]")
        refs = rule.get("backendRefs")
        if refs is not None:
            for k, ref in enumerate(refs if type(refs) is list else _list(refs, f"spec.rules[{i}].backendRefs")):
                at = f"spec.rules[{i}].backendRefs[{k}]"
                out.append(parse_object_ref(ref, default_namespace=namespace, default_kind="Service", where=at))
                filters = ref.get("filters")  # ref is an object: parse_object_ref said so
                if filters is not None:
                    out.extend(_mirror_ref(filters, namespace=namespace, where=f"{at}.filters"))
        filters = rule.get("filters")
        if filters is not None:
            out.extend(_mirror_ref(filters, namespace=namespace, where=f"spec.rules[{i}].filters"))
    return out
