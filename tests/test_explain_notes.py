"""``explain`` says what it can tell: a headline its details bear out, core kinds by their
plain name, and (with --policies) how hostname patterns resolve and which exceptions apply."""

from __future__ import annotations

from pathlib import Path

import pytest

from webhook.cli import main
from webhook.explain import ParentReport, RouteReport, explain
from webhook.state.store import ClusterState

REPO = Path(__file__).resolve().parents[1]


def parent(accepted: bool | None, reason: str = "Accepted") -> ParentReport:
    return ParentReport("Gateway infra/shared", "spec.parentRefs[0]", True, accepted, reason, "", (), ())


@pytest.mark.parametrize(
    "accepted, headline",
    [
        ([True], "attached"),
        ([False], "NOT attached"),
        ([None], "cannot tell whether attached"),
        ([True, False], "attached to 1 of 2 parents"),
        ([True, None], "attached to 1 of 2 parents, cannot tell for 1"),
        ([False, None], "NOT attached to 1 parents, cannot tell for the rest"),
        ([], "NOT attached"),
    ],
)
def test_the_headline_agrees_with_the_parents(accepted: list[bool | None], headline: str) -> None:
    """"attached" only where every predicted parent attaches; "cannot tell" where the view cannot."""
    report = RouteReport("HTTPRoute", "apples", "web", "", None, tuple(parent(a) for a in accepted), ())
    assert report.headline == headline


def test_a_service_parent_is_named_service_not_service_core() -> None:
    """A GAMMA parent of the core group reads ``Service``."""
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
             "metadata": {"name": "mesh", "namespace": "apples"},
             "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": "web"}]}}
    [report] = explain([(route, "r.yaml", 1)], ClusterState.from_objects([]))
    assert report.parents[0].message.startswith("Service parents are not Gateways")
    assert "core" not in report.parents[0].message


def test_explain_with_policies_shows_resolved_patterns_and_exceptions(capsys: pytest.CaptureFixture[str],
                                                                     tmp_path: Path) -> None:
    """The pattern for the route's namespace and the exception covering the route are printed."""
    fixtures = REPO / "tests/cli/exceptions"
    policy = (fixtures / "policy.yaml").read_text().replace(
        "  hostnames:\n    required: true\n",
        "  hostnames:\n    required: true\n    allowed:\n      - namespaces: {names: [network]}\n"
        "        patterns: ['*.{namespace}.example.com', '{labels.team}.example.com']\n")
    (tmp_path / "policy.yaml").write_text(policy)
    code = main(["explain", "--policies", str(tmp_path / "policy.yaml"), "--policies", str(fixtures / "exception.yaml"),
                 str(fixtures / "manifests.yaml")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert ("TenancyPolicy shared-gateway: hostnames allowed for namespace network: *.network.example.com "
            "(from *.{namespace}.example.com), {labels.team}.example.com (matches nothing: namespace network "
            "has no label team)") in out
    assert ("TenancyException catch-all-redirect: excepts hostnames/HostnameRequired for HTTPRoute "
            "network/http-to-https (the platform's HTTP to HTTPS redirect answers every hostname on port 80; "
            "until 2027-06-30)") in out
    assert out.count("TenancyException catch-all-redirect") == 1  # not the neighbouring route
