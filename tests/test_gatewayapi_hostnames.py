"""Hostname matching and Listener/Route hostname intersection, as the Gateway API defines them.

Sources: HTTPRoute ``spec.hostnames`` and Listener ``hostname`` descriptions in the v1.6.1
CRDs, and the "Hostnames in Gateway API" guide (its intersection table is reproduced below).
"""

from __future__ import annotations

import functools

import pytest

from webhook.gatewayapi import hostname_matches, intersect_hostname, intersect_hostnames, normalize_hostname


@pytest.mark.parametrize(
    ("pattern", "hostname", "expected"),
    [
        # "a match for `*.example.com` would match both `test.example.com`, and
        # `foo.test.example.com`, but not `example.com`."
        ("*.example.com", "test.example.com", True),
        ("*.example.com", "foo.test.example.com", True),
        ("*.example.com", "example.com", False),
        # "`example.com` and `test.example.net` would not match" a `*.example.com` listener.
        ("*.example.com", "test.example.net", False),
        # A suffix match is on whole labels, not on characters.
        ("*.example.com", "badexample.com", False),
        ("*.example.com", "a.badexample.com", False),
        # "`*.com` matches `example.com`, and also `www.example.com`."
        ("*.com", "example.com", True),
        ("*.com", "www.example.com", True),
        ("*.com", "com", False),
        # A wildcard covers a more specific wildcard, never a less specific one.
        ("*.example.com", "*.example.com", True),
        ("*.example.com", "*.foo.example.com", True),
        ("*.com", "*.example.com", True),
        ("*.foo.example.com", "*.example.com", False),
        # A precise pattern covers only itself.
        ("test.example.com", "test.example.com", True),
        ("test.example.com", "foo.test.example.com", False),
        ("example.com", "*.example.com", False),
        ("test.example.com", "*.example.com", False),
    ],
)
def test_a_wildcard_label_is_a_suffix_match_over_one_or_more_labels(pattern: str, hostname: str, expected: bool) -> None:
    """"Hostnames that are prefixed with a wildcard label (`*.`) are interpreted as a suffix match."""
    assert hostname_matches(pattern, hostname) is expected


@pytest.mark.parametrize(
    ("pattern", "hostname"),
    [
        ("*.Example.COM", "a.example.com"),
        ("*.example.com", "A.EXAMPLE.com"),
        ("Test.Example.Com", "test.example.com"),
        ("test.example.com.", "test.example.com"),
        ("*.example.com", "a.example.com."),
        ("*.example.com.", "a.example.com"),
    ],
)
def test_hostnames_compare_case_insensitively_and_ignore_a_trailing_dot(pattern: str, hostname: str) -> None:
    """DNS names are case-insensitive and a trailing dot names the same (absolute) name."""
    assert hostname_matches(pattern, hostname)


@pytest.mark.parametrize(
    ("listener", "route", "intersected"),
    [
        # The table in "Hostnames in Gateway API", row by row.
        ("www.example.com", "www.example.com", "www.example.com"),
        ("*.example.com", "www.example.com", "www.example.com"),
        ("*.example.com", "sub.domain.example.com", "sub.domain.example.com"),
        ("www.example.com", "*.example.com", "www.example.com"),
        ("sub.domain.example.com", "*.example.com", "sub.domain.example.com"),
        ("*.example.com", "*.example.com", "*.example.com"),
        ("*.com", "*.example.com", "*.example.com"),
        (None, "www.example.com", "www.example.com"),
        # "Expected match examples": listener `*.example.com`, route `*.com` -> `*.example.com`.
        ("*.example.com", "*.com", "*.example.com"),
        # Wildcard against a more specific wildcard, both ways round.
        ("*.example.com", "*.foo.example.com", "*.foo.example.com"),
        ("*.foo.example.com", "*.example.com", "*.foo.example.com"),
        # A route wildcard over a precise listener yields the listener's hostname.
        ("test.example.com", "*.example.com", "test.example.com"),
        # Non-intersecting pairs.
        ("*.example.com", "apples.other.org", None),
        ("*.example.com", "example.com", None),
        ("*.example.com", "test.example.net", None),
        ("test.example.com", "other.example.com", None),
        ("example.com", "*.example.com", None),
        ("*.foo.example.com", "bar.example.com", None),
        ("*.foo.example.com", "*.bar.example.com", None),
        # Case and trailing dots do not change the outcome; the result is normalized.
        ("*.Example.com", "WWW.example.com.", "www.example.com"),
        ("Test.Example.Com.", "*.EXAMPLE.com", "test.example.com"),
    ],
)
def test_intersect_hostname_yields_the_more_specific_of_two_overlapping_hostnames(
    listener: str | None, route: str, intersected: str | None
) -> None:
    """"If both Listener and Route have wildcard hostnames, they intersect as long as they overlap.\""""
    assert intersect_hostname(listener, route) == intersected


@pytest.mark.parametrize(
    ("listener", "routes", "intersected"),
    [
        # "A Listener with `test.example.com` as the hostname matches HTTPRoutes that have either
        # not specified any hostnames, or have specified at least one of `test.example.com` or
        # `*.example.com`."
        ("test.example.com", (), ("test.example.com",)),
        ("test.example.com", ("test.example.com",), ("test.example.com",)),
        ("test.example.com", ("*.example.com",), ("test.example.com",)),
        ("test.example.com", ("other.example.com", "*.example.com"), ("test.example.com",)),
        # "if a Listener specified `*.example.com`, and the HTTPRoute specified `test.example.com`
        # and `test.example.net`, `test.example.net` must not be considered for a match."
        ("*.example.com", ("test.example.com", "test.example.net"), ("test.example.com",)),
        # A listener without a hostname takes every route hostname as written.
        (None, ("a.example.com", "*.b.example.org"), ("a.example.com", "*.b.example.org")),
        # Neither side names a hostname: the route catches everything.
        (None, (), ("*",)),
        # "If both the Listener and HTTPRoute have specified hostnames, and none match ... the
        # HTTPRoute is not accepted."
        ("*.example.com", ("apples.other.org",), ()),
        ("*.example.com", ("example.com", "test.example.net"), ()),
        # Duplicates collapse, order of first appearance is kept.
        ("*.example.com", ("b.example.com", "a.example.com", "B.example.com"), ("b.example.com", "a.example.com")),
        ("x.example.com", ("*.example.com", "x.example.com"), ("x.example.com",)),
    ],
)
def test_intersect_hostnames_keeps_only_route_hostnames_that_intersect_the_listener(
    listener: str | None, routes: tuple[str, ...], intersected: tuple[str, ...]
) -> None:
    """"any HTTPRoute hostnames that do not match the Listener hostname MUST be ignored.\""""
    assert intersect_hostnames(listener, routes) == intersected


@pytest.mark.parametrize(
    ("raw", "normal"),
    [("Foo.Example.COM", "foo.example.com"), ("foo.example.com.", "foo.example.com"), ("*.A.b.", "*.a.b")],
)
def test_normalize_hostname_lowercases_and_drops_the_root_dot(raw: str, normal: str) -> None:
    """Normalization makes equal DNS names compare equal."""
    assert normalize_hostname(raw) == normal


LABELS = ("a", "b", "c")


def _all_hostnames() -> list[str]:
    """Every precise and wildcard hostname of up to three labels over a tiny alphabet."""
    names = [".".join(p) for n in (1, 2, 3) for p in _product(LABELS, n)]
    return names + ["*." + n for n in names]


def _product(alphabet: tuple[str, ...], n: int) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = [()]
    for _ in range(n):
        out = [p + (x,) for p in out for x in alphabet]
    return out


def _covers(pattern: str, name: str) -> bool:
    """Reference semantics over label lists: ``*`` stands for one or more leading labels."""
    p, h = pattern.split("."), name.split(".")
    if p[0] != "*":
        return p == h
    suffix = p[1:]
    # A wildcard name stands for names with at least one more label than its suffix.
    return len(h) > len(suffix) and h[len(h) - len(suffix):] == suffix


@pytest.mark.parametrize("pattern", _all_hostnames())
def test_hostname_matches_agrees_with_a_label_wise_reference(pattern: str) -> None:
    """Against every small hostname, matching agrees with a label-list definition of the rule."""
    for name in _all_hostnames():
        assert hostname_matches(pattern, name) is _covers(pattern, name), (pattern, name)


@functools.cache
def _concrete(name: str) -> frozenset[str]:
    """The precise names (over a slightly larger universe) a hostname stands for."""
    universe = [".".join(p) for n in (1, 2, 3, 4) for p in _product(LABELS, n)]
    return frozenset(u for u in universe if _covers(name, u))


@pytest.mark.parametrize("listener", _all_hostnames())
def test_the_intersected_hostname_stands_for_exactly_the_common_names(listener: str) -> None:
    """The intersection of two hostnames covers the names both cover, and no others."""
    for route in _all_hostnames():
        common = _concrete(listener) & _concrete(route)
        got = intersect_hostname(listener, route)
        if not common:
            assert got is None, (listener, route)
        else:
            assert got is not None and _concrete(got) == common, (listener, route, got)
