"""Path matches: what the spec says each one matches, and when two overlap."""

from __future__ import annotations

import pytest

from webhook.gatewayapi import PathMatch, Route, paths_overlap


def m(kind: str, value: str) -> PathMatch:
    return PathMatch(kind, value)


@pytest.mark.parametrize(
    "a, b, expected",
    [
        (m("PathPrefix", "/store"), m("PathPrefix", "/store/cart"), True),
        (m("PathPrefix", "/store"), m("Exact", "/store"), True),
        (m("PathPrefix", "/store"), m("Exact", "/store/"), True),  # a trailing / is ignored
        (m("PathPrefix", "/store/"), m("Exact", "/store"), True),
        (m("PathPrefix", "/store"), m("PathPrefix", "/storefront"), False),  # whole path elements
        (m("PathPrefix", "/store"), m("Exact", "/storefront"), False),
        (m("PathPrefix", "/"), m("Exact", "/anything"), True),
        (m("Exact", "/login"), m("Exact", "/login"), True),
        (m("Exact", "/login"), m("Exact", "/login/"), False),
        (m("Exact", "/a"), m("PathPrefix", "/b"), False),
        (m("RegularExpression", "/api/v[0-9]+"), m("PathPrefix", "/store"), None),
        (m("RegularExpression", "/api/.*"), m("PathPrefix", "/"), True),  # / takes every path
        (m("MethodOnly", "/*/Get"), m("Exact", "/pkg.Svc/Get"), None),
    ],
)
def test_two_path_matches_overlap_when_some_path_matches_both(a: PathMatch, b: PathMatch, expected: bool | None) -> None:
    """PathPrefix matches whole path elements; implementation-specific matches are unknown (None)."""
    assert paths_overlap(a, b) is expected
    assert paths_overlap(b, a) is expected


def grpc(*matches: dict) -> Route:
    return Route.from_object({"kind": "GRPCRoute", "metadata": {"name": "g", "namespace": "n"},
                              "spec": {"rules": [{"matches": list(matches)}]}})


@pytest.mark.parametrize(
    "match, expected",
    [
        ({"method": {"service": "pkg.Svc", "method": "Get"}}, ("Exact", "/pkg.Svc/Get")),
        ({"method": {"service": "pkg.Svc"}}, ("PathPrefix", "/pkg.Svc")),
        ({"headers": [{"name": "x", "value": "y"}]}, ("PathPrefix", "/")),
        ({"method": {"method": "Get"}}, ("MethodOnly", "/*/Get")),
        ({"method": {"type": "RegularExpression", "service": "pkg\\..*"}}, ("RegularExpression", "/pkg\\..*/*")),
    ],
)
def test_a_grpc_method_match_is_the_path_it_matches(match: dict, expected: tuple[str, str]) -> None:
    """/{service}/{method}; a service alone is every method of it; no method match is every request."""
    (path,) = grpc(match).paths
    assert (path.type, path.value) == expected


def test_an_http_route_defaults_to_every_path_and_a_tls_route_takes_the_whole_host() -> None:
    """A rule without matches, a match without path, and no rules at all: PathPrefix /."""
    http = Route.from_object({"kind": "HTTPRoute", "metadata": {"name": "h", "namespace": "n"},
                              "spec": {"rules": [{}, {"matches": [{"headers": []}, {"path": {"value": "/x"}}]}]}})
    assert [(p.type, p.value, p.field) for p in http.paths] == [
        ("PathPrefix", "/", "spec.rules[0]"), ("PathPrefix", "/", "spec.rules[1].matches[0].path"),
        ("PathPrefix", "/x", "spec.rules[1].matches[1].path")]
    assert [(p.type, p.value) for p in Route.from_object({"kind": "HTTPRoute", "spec": {}}).paths] == [("PathPrefix", "/")]
    tls = Route.from_object({"kind": "TLSRoute", "metadata": {"name": "t", "namespace": "n"}, "spec": {}})
    assert [p.everything for p in tls.paths] == [True]
