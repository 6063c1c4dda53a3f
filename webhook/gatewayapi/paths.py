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
        return tuple(dict.fromkeys(_rule_paths(spec, _http_path)))
    if kind == "GRPCRoute":
        return tuple(dict.fromkeys(_rule_paths(spec, _grpc_path)))
    return (WHOLE_HOST,)


def _rule_paths(spec: Mapping[str, Any], path_of: Callable[[Mapping[str, Any], str], PathMatch]) -> Iterator[PathMatch]:
    """``path_of(match, field)`` for every match of every rule; ``PathPrefix /`` for a rule
    without matches, and for a route without rules."""
    rules = _list(spec.get("rules"), "spec.rules")
    if not rules:
        yield PathMatch("PathPrefix", "/", "spec.rules")
    for i, rule in enumerate(rules):
        at = f"spec.rules[{i}]"
        matches = _list(_map(rule, at).get("matches"), f"{at}.matches")
        if not matches:
            yield PathMatch("PathPrefix", "/", at)
        for j, match in enumerate(matches):
            where = f"{at}.matches[{j}]"
            yield path_of(_map(match, where), where)


def _http_path(match: Mapping[str, Any], where: str) -> PathMatch:
    path = _map(match.get("path"), f"{where}.path")
    return PathMatch(_opt_str(path.get("type"), f"{where}.path.type") or "PathPrefix",
                     _opt_str(path.get("value"), f"{where}.path.value") or "/", f"{where}.path")


def _grpc_path(match: Mapping[str, Any], where: str) -> PathMatch:
    method = _map(match.get("method"), f"{where}.method")
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
