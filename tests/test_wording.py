"""Messages that say what is true: offline "not in the manifests", a ListenerSet called a
ListenerSet, no ``name: *`` in a ReferenceGrant fix, real defaults in ``serve --help``, no
promise of a fix on the Service's next update, and a warning for an apiVersion the
targeted Gateway API release does not serve."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from webhook.cli import build_parser, main
from webhook.engine import decide
from webhook.offline import synthesize_request
from webhook.policy.loader import load_documents, load_paths
from webhook.state.kinds import GATEWAY_API_RELEASE, STANDARD_SERVED, unserved_version
from webhook.state.store import ClusterState

REPO = Path(__file__).resolve().parents[1]
CLI = REPO / "tests/cli"
CRDS = REPO / ".." / "shared" / "gateway-api" / "v1.6.1" / "crds" / "standard"
MIRROR_POLICY = "apiVersion: routewarden.dev/v1alpha1\nkind: TenancyPolicy\nmetadata: {name: mirror}\nspec: {}\n"
MIRROR = load_documents([("p.yaml", MIRROR_POLICY)])


def route(**spec: object) -> dict:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "web", "namespace": "apples"}, "spec": spec}


@pytest.mark.parametrize(
    "state, words",
    [
        (ClusterState(), "Gateway infra/shared is not in the cluster view (yet)"),
        (ClusterState.from_objects([]), "Gateway infra/shared is not in the manifests"),
    ],
)
def test_a_missing_gateway_is_described_by_where_the_view_comes_from(state: ClusterState, words: str) -> None:
    """Online the cluster; offline the manifests (with --cluster: both, see inputs.list_cluster)."""
    state.mark_synced("Gateway")
    decision = decide(synthesize_request(route(parentRefs=[{"name": "shared", "namespace": "infra"}])), MIRROR, state)
    assert words in decision.violations[0].message


def test_check_says_not_in_the_manifests(capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI never claims something "does not exist in the cluster" it did not look at."""
    main(["check", "--policies", str(CLI / "policies"), str(CLI / "repo/teams/apples")])
    out = capsys.readouterr().out
    assert "Gateway infra/shared is not in the manifests" in out
    assert "does not exist in the cluster" not in out


def test_a_listenerset_refusal_asks_the_listenersets_owners() -> None:
    """The fix for a ListenerSet parent names the ListenerSet, not a Gateway of that name."""
    objects = yaml.safe_load_all((REPO / "tests/scenarios/listenersets/cluster.yaml").read_text())
    state = ClusterState.from_objects([o for o in objects if o] + [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apples", "labels": {"team": "apples"}}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cherries"}}])
    obj = route(parentRefs=[{"group": "gateway.networking.k8s.io", "kind": "ListenerSet", "name": "apples",
                             "namespace": "apples"}], hostnames=["shop.apples.example.com"])
    obj["metadata"]["namespace"] = "cherries"
    decision = decide(synthesize_request(obj), MIRROR, state)
    [violation] = decision.violations
    assert violation.rule == "attachment/NotAllowedByListeners"
    assert violation.fix.startswith("ask the owners of ListenerSet apples/apples to admit namespace cherries")


@pytest.mark.parametrize("name, expected", [("checkout", ", name: checkout}"), ("*", "kind: Service}")])
def test_the_reference_grant_fix_never_suggests_name_star(name: str, expected: str) -> None:
    """``name: *`` is YAML's alias marker and would match only an object named "*": the name is left out."""
    obj = route(parentRefs=[{"name": "shared", "namespace": "infra"}],
                rules=[{"backendRefs": [{"name": name, "namespace": "bananas", "port": 80}]}])
    decision = decide(synthesize_request(obj), MIRROR, ClusterState.from_objects([]))
    [fix] = [v.fix for v in decision.violations if v.rule == "references/RefNotPermitted"]
    assert fix.endswith(expected) and "name: *" not in fix


def test_serve_help_shows_the_real_defaults() -> None:
    """The self-managed certificate options show their values, not field names."""
    serve = build_parser()._subparsers._group_actions[0].choices["serve"]  # argparse has no API for this
    defaults = {a.dest: a.default for a in serve._actions}
    assert (defaults["cert_secret"], defaults["webhook_configuration"], defaults["service"]) == (
        "routewarden-tls", "routewarden", "routewarden")
    assert "(default: routewarden-tls)" in " ".join(serve.format_help().split())


def test_a_service_of_a_missing_gateway_is_not_promised_a_fix_on_its_next_update(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The warning says what happens (admitted unchanged) without promising a next update."""
    objects = [o for o in yaml.safe_load_all((CLI / "policytest/echo.yaml").read_text()) if o["kind"] == "Service"]
    (tmp_path / "service.yaml").write_text(yaml.safe_dump_all(objects))
    main(["check", "--policies", str(REPO / "policies/servicepolicy-cilium-eks.yaml"), str(tmp_path), "-o", "json"])
    [result] = json.loads(capsys.readouterr().out)["results"]
    [warning] = result["warnings"]
    assert "Gateway echo/echo" in warning and "is not in the manifests" in warning
    assert "next update" not in warning and "admitted without the ServicePolicy's settings" in warning


@pytest.mark.parametrize(
    "api_version, kind, warned",
    [
        ("gateway.networking.k8s.io/v1alpha2", "TCPRoute", True),
        ("gateway.networking.k8s.io/v1alpha2", "TLSRoute", True),
        ("gateway.networking.k8s.io/v1alpha3", "TLSRoute", True),
        ("gateway.networking.k8s.io/v1", "TCPRoute", False),
        ("gateway.networking.k8s.io/v1beta1", "HTTPRoute", False),
        ("networking.istio.io/v1alpha3", "Gateway", False),
    ],
)
def test_check_warns_on_an_api_version_the_release_does_not_serve(api_version: str, kind: str, warned: bool) -> None:
    """TCPRoute and TLSRoute v1alpha2 are not served by the standard channel of v1.6."""
    message = unserved_version({"apiVersion": api_version, "kind": kind})
    assert bool(message) is warned
    if warned:
        assert f"Gateway API {GATEWAY_API_RELEASE}" in message and "use gateway.networking.k8s.io/v1" in message


def test_the_served_versions_are_those_of_the_release_crds() -> None:
    """STANDARD_SERVED equals the served versions of the standard channel's CRDs."""
    if not CRDS.is_dir():
        pytest.skip(f"{CRDS} not present")
    served = {}
    for path in CRDS.glob("gateway.networking.k8s.io_*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                served[doc["spec"]["names"]["kind"]] = sorted(v["name"] for v in doc["spec"]["versions"] if v["served"])
    assert {k: sorted(v) for k, v in STANDARD_SERVED.items()} == served


def test_check_reports_the_unserved_version_as_a_warning(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A TCPRoute v1alpha2 in the manifests is admitted with the warning (the engine does not deny it)."""
    (tmp_path / "tcp.yaml").write_text(yaml.safe_dump({
        "apiVersion": "gateway.networking.k8s.io/v1alpha2", "kind": "TCPRoute",
        "metadata": {"name": "db", "namespace": "apples"}, "spec": {"parentRefs": [{"name": "shared"}]}}))
    code = main(["check", "--policies", str(CLI / "policies"), str(tmp_path), "-o", "json"])
    [result] = json.loads(capsys.readouterr().out)["results"]
    assert code == 0 and result["result"] == "warn"
    assert any("is not served by the standard channel" in w for w in result["warnings"])


def test_the_example_policies_still_load() -> None:
    """Guard for the fixtures above: the shipped policies load."""
    assert load_paths([REPO / "policies"]).tenancy
