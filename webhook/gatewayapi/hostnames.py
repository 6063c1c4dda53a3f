"""Hostnames: matching with wildcards and the intersection of route and listener hostnames."""

from __future__ import annotations

import functools
from collections.abc import Iterable


@functools.lru_cache(maxsize=8192)
def normalize_hostname(hostname: str) -> str:
    # Cached: policy patterns, listener hostnames and a review's own hostnames are
    # normalized again by every match; bounded, since hostnames come from user input.
    return hostname.strip().lower().rstrip(".")


def is_wildcard(hostname: str) -> bool:
    return hostname.startswith("*.")


def hostname_matches(pattern: str, hostname: str) -> bool:
    """Whether ``hostname`` (possibly itself a wildcard) falls under ``pattern``.

    ``*.example.com`` covers ``a.example.com``, ``a.b.example.com`` and
    ``*.a.example.com``, but not ``example.com``. A plain pattern covers only itself.
    """
    return _covers(normalize_hostname(pattern), normalize_hostname(hostname))


def _covers(pattern: str, hostname: str) -> bool:
    """:func:`hostname_matches` for names normalized already."""
    if pattern == hostname:
        return True
    if pattern.startswith("*."):
        suffix = pattern[1:]  # ".example.com"
        return hostname.endswith(suffix) and len(hostname) > len(suffix)
    return False


def intersect_hostname(listener: str | None, route: str) -> str | None:
    """The hostname a route hostname yields on a listener, or None when they do not intersect.

    A route wildcard over a more specific listener hostname yields the listener's
    hostname (``*.example.com`` on listener ``foo.example.com`` serves ``foo.example.com``).
    """
    route = normalize_hostname(route)
    if listener is None:
        return route
    listener = normalize_hostname(listener)
    if _covers(listener, route):
        return route
    if _covers(route, listener):
        return listener
    return None


def intersect_hostnames(listener: str | None, routes: Iterable[str]) -> tuple[str, ...]:
    """Hostnames a route serves on a listener. A route without hostnames takes the listener's.

    Returns ``("*",)`` when neither side names a hostname (the route catches everything).
    """
    routes = tuple(routes)
    if not routes:
        return (normalize_hostname(listener),) if listener else ("*",)
    out = []
    for r in routes:
        h = intersect_hostname(listener, r)
        if h is not None and h not in out:
            out.append(h)
    return tuple(out)
