"""Offline, every kind of claim follows the ownership order rule: undated manifests are a
tie reported on both sides as warnings, never a denial; a baseline makes the change the
newcomer. Claims through a ListenerSet, without hostnames, by path, and an HTTPRoute
beside a GRPCRoute on one listener."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from webhook.cli import main

FIXTURES = Path(__file__).resolve().parent / "cli" / "claims"

# (resource, rules that warn without a baseline, in both modes)
TIES = {
    "HTTPRoute/team/direct": {"hostnames/HostnameOwnerUnknown"},  # 1: through ListenerSet other/ls
    "HTTPRoute/other/old-via-ls": {"hostnames/HostnameOwnerUnknown"},
    "HTTPRoute/store-ns/login": {"hostnames/HostnameOwnerUnknown"},  # 5 and 6: no hostnames, Exact /login
    "HTTPRoute/site-ns/login": {"hostnames/HostnameOwnerUnknown"},
    "GRPCRoute/team/api": {"hostnames/HostnameOwnerUnknown", "attachment/RouteKindConflict"},  # 9
    "HTTPRoute/other/api": {"hostnames/HostnameOwnerUnknown", "attachment/RouteKindConflict"},
}


def check(capsys: pytest.CaptureFixture[str], policy: str, *args: str) -> tuple[int, dict[str, dict]]:
    code = main(["check", "--policies", str(FIXTURES / policy), *args, "-o", "json"])
    document = json.loads(capsys.readouterr().out)
    return code, {f"{r['kind']}/{r['namespace']}/{r['name']}": r for r in document["results"]}


@pytest.mark.parametrize("policy", ["host.yaml", "path.yaml"])
def test_undated_claims_warn_on_both_sides_and_deny_nothing(capsys: pytest.CaptureFixture[str], policy: str) -> None:
    """Without a baseline nobody can tell who was first: every claimant warns, naming the other; exit 0."""
    code, results = check(capsys, policy, str(FIXTURES / "change"))
    assert code == 0
    for resource, rules in TIES.items():
        result = results[resource]
        assert result["result"] == "warn", resource
        assert {(v["rule"], v["mode"]) for v in result["violations"]} == {(r, "warn") for r in rules}, resource
    assert "HTTPRoute site-ns/login" in results["HTTPRoute/store-ns/login"]["violations"][0]["message"]
    assert results["Gateway/infra/shared"]["violations"] == []  # the routes say it; the Gateway does not repeat it


@pytest.mark.parametrize(
    "policy, denied",
    [
        ("host.yaml", {
            "HTTPRoute/team/direct": {"hostnames/HostnameConflict"},
            "HTTPRoute/store-ns/login": {"hostnames/HostnameConflict"},
            "GRPCRoute/team/api": {"hostnames/HostnameConflict", "attachment/RouteKindConflict"},
        }),
        ("path.yaml", {
            "HTTPRoute/team/direct": {"hostnames/PathConflict"},
            "HTTPRoute/store-ns/login": {"hostnames/PathConflict"},
            "GRPCRoute/team/api": {"hostnames/PathConflict", "attachment/RouteKindConflict"},
        }),
    ],
)
def test_a_baseline_makes_the_change_the_later_claimant(capsys: pytest.CaptureFixture[str], policy: str,
                                                        denied: dict[str, set[str]]) -> None:
    """--baseline: what the change adds is newer, so it is denied; what the baseline holds is not judged."""
    code, results = check(capsys, policy, "--baseline", str(FIXTURES / "base"), str(FIXTURES / "change"))
    assert code == 1
    for resource, rules in denied.items():
        assert results[resource]["change"] == "added"
        assert {(v["rule"], v["mode"]) for v in results[resource]["violations"]} == {(r, "enforce") for r in rules}
    assert "namespace site-ns" in results["HTTPRoute/store-ns/login"]["violations"][0]["message"]
    for resource in ("HTTPRoute/other/old-via-ls", "HTTPRoute/site-ns/login", "HTTPRoute/other/api"):
        assert results[resource]["change"] == "unchanged" and results[resource]["violations"] == []
