"""Path matches: which requests of a host a route serves, and whether two routes' paths overlap.

* HTTPRoute: each rule's ``matches[].path``. The API defaults a match without ``path`` to
  ``PathPrefix /`` and a rule without ``matches`` to one such match. ``Exact`` and
  ``PathPrefix`` are core; ``PathPrefix`` "matches full path elements ... a trailing ``/``
  is ignored": ``/abc`` matches ``/abc``, ``/abc/`` and ``/abc/def``, never ``/abcd``.
  ``RegularExpression`` is implementation-specific: what it matches is the
  implementation's (RE2, PCRE, anchored or not), so whether it overlaps another path is
  unknown.
* GRPCRoute: a gRPC request's path is ``/{service}/{method}``. A method match with
  service and method is the path ``/{service}/{method}``; with a service alone, every
  method of it (``PathPrefix /{service}``); a rule or match without ``method``, every
  request. A method alone and ``RegularExpression`` are implementation-specific, so
  unknown, like a regular expression path.
* Every other kind (TLSRoute) matches no path: it takes the whole host (``PathPrefix /``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .core import _list, _map, _opt_str

CORE_PATH_TYPES = frozenset({"Exact", "PathPrefix"})


@dataclass(frozen=True, slots=True)
class PathMatch:
    """One path match of a route: ``type`` Exact, PathPrefix, or an implementation-specific
    kind (RegularExpression, a gRPC method alone) whose reach is unknown."""

    type: str
    value: str
    field: str = ""

    @property
    def known(self) -> bool:
        return self.type in CORE_PATH_TYPES

    @property
    def everything(self) -> bool:
        """Matches every path of the host."""
        return self.type == "PathPrefix" and self.value.rstrip("/") == ""

    def describe(self) -> str:
        return f"{self.type} {self.value}"


def _under(prefix: str, path: str) -> bool:
    """Whether ``PathPrefix prefix`` matches ``path`` (whole path elements)."""
    base = prefix.rstrip("/")
    return not base or path == base or path.startswith(base + "/")


def paths_overlap(a: PathMatch, b: PathMatch) -> bool | None:
    """Whether some request path matches both; None when an implementation-specific match
    makes it unknown. ``PathPrefix /`` overlaps everything."""
    if a.everything or b.everything:
        return True
    if not (a.known and b.known):
        return None
    if a.type == "Exact" and b.type == "Exact":
        return a.value == b.value
    if a.type == "Exact":
        return _under(b.value, a.value)
    if b.type == "Exact":
        return _under(a.value, b.value)
    return _under(a.value, b.value) or _under(b.value, a.value)


WHOLE_HOST = PathMatch("PathPrefix", "/", "spec.hostnames")


def route_paths(spec: Mapping[str, Any], kind: str) -> tuple[PathMatch, ...]:
    """The path matches of a route's rules (a route's rules apply to all its hostnames)."""
    if kind == "HTTPRoute":
        return tuple(_rule_paths(spec, _http_path))
    if kind == "GRPCRoute":
        return tuple(_rule_paths(spec, _grpc_path))
    return (WHOLE_HOST,)


def _rule_paths(spec: Mapping[str, Any], path_of: Callable[[Any, int, int], PathMatch]) -> Iterator[PathMatch]:
    """``path_of(match, i, j)`` for match ``j`` of every rule ``i``; ``PathPrefix /`` for a
    rule without matches, and for a route without rules. (Each has its own field, so
    none is a duplicate of another.)"""
    rules = spec.get("rules")
    if type(rules) is not list:
        rules = _list(rules, "spec.rules")
    if not rules:
        yield PathMatch("PathPrefix", "/", "spec.rules")
    for i, rule in enumerate(rules):
        if type(rule) is not dict:
            rule = _map(rule, f"spec.rules[{i}]")
        matches = rule.get("matches")
        if type(matches) is not list:
            matches = _list(matches, f"spec.rules[{i}].matches")
        if not matches:
            yield PathMatch("PathPrefix", "/", f"spec.rules[{i}]")
        for j, match in enumerate(matches):
            yield path_of(match, i, j)


def _http_path(match: Any, i: int, j: int) -> PathMatch:
    path = match.get("path") if type(match) is dict else _map(match, f"spec.rules[{i}].matches[{j}]").get("path")
    if path is None:
        return PathMatch("PathPrefix", "/", f"spec.rules[{i}].matches[{j}].path")
    where = f"spec.rules[{i}].matches[{j}].path"
    path = _map(path, where)
    kind, value = path.get("type"), path.get("value")
    if not (type(kind) is str or kind is None) or not (type(value) is str or value is None):
        kind, value = _opt_str(kind, f"{where}.type"), _opt_str(value, f"{where}.value")
    return PathMatch(kind or "PathPrefix", value or "/", where)


def _grpc_path(match: Any, i: int, j: int) -> PathMatch:
    where = f"spec.rules[{i}].matches[{j}]"
    method = _map(_map(match, where).get("method"), f"{where}.method")
    if not method:
        return PathMatch("PathPrefix", "/", where)
    kind = _opt_str(method.get("type"), f"{where}.method.type") or "Exact"
    service = _opt_str(method.get("service"), f"{where}.method.service")
    name = _opt_str(method.get("method"), f"{where}.method.method")
    if kind != "Exact" or not service:
        value = f"/{service or '*'}/{name or '*'}"
        return PathMatch("RegularExpression" if kind != "Exact" else "MethodOnly", value, f"{where}.method")
    if name:
        return PathMatch("Exact", f"/{service}/{name}", f"{where}.method")
    return PathMatch("PathPrefix", f"/{service}", f"{where}.method")


def path_object(path: PathMatch, kind: str) -> tuple[str, dict[str, Any]] | None:
    """(where, what) to write into a route of ``kind`` so that :func:`route_paths` reads
    ``path`` back at its field; None for the path a route without matches takes."""
    where = path.field
    if kind == "HTTPRoute" and where.endswith(".path"):
        return where, {"type": path.type, "value": path.value}
    if kind == "GRPCRoute" and where.endswith(".method"):
        value = path.value
        if path.type == "PathPrefix":  # a service alone: every method of it
            return where, {"type": "Exact", "service": value[1:]}
        if path.type == "MethodOnly":  # "/*/{method}": a method without service
            return where, {"type": "Exact", "method": value[3:]}
        # "/{service}/{method}": any split that leaves both non-empty reads back the same
        split = value.find("/", 2)
        return where, {"type": "Exact" if path.type == "Exact" else path.type,
                       "service": value[1:split], "method": value[split + 1:]}
    if where.startswith("spec.rules["):  # a rule, or a gRPC match, without a path: it must exist
        return where, {}
    return None
