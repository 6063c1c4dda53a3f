"""Offline, ownership order is unknown unless told: manifests carry no creationTimestamp,
so a change's additions are newer than its baseline, the object under test is newer than
a test folder's cluster, and a tie between undated routes warns both, denying neither."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from webhook import gatewayapi as gw
from webhook.cli import main
from webhook.rules.ownership import claimed_before
from webhook.state.store import ClusterState

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests/cli/ownership"
POLICY = str(FIXTURES / "policy.yaml")


def route(namespace: str, *, created: str = "") -> dict:
    meta = {"name": "shop", "namespace": namespace}
    if created:
        meta["creationTimestamp"] = created
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": meta,
            "spec": {"parentRefs": [{"name": "shared", "namespace": "infra"}], "hostnames": ["shop.example.com"]}}


@pytest.mark.parametrize(
    "offline, a, b, added, held, expected",
    [
        (False, "", "", (), ("a", "b"), True),  # online: creation order, names break ties
        (True, "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z", (), ("a", "b"), True),
        (True, "2025-01-01T00:00:00Z", "2024-01-01T00:00:00Z", (), ("a", "b"), False),
        (True, "", "", (), ("a", "b"), None),  # two undated manifests: nobody can tell
        (True, "", "", ("b",), ("a", "b"), True),  # the change added b: a was there first
        (True, "", "", ("a",), ("a", "b"), False),
        (True, "", "", (), ("a",), True),  # b is a request the view does not hold: newer
        (True, "2024-01-01T00:00:00Z", "", (), ("a", "b"), True),  # live (--cluster) before undated
        (True, "", "2024-01-01T00:00:00Z", (), ("a", "b"), False),
    ],
)
def test_claimed_before_orders_only_what_something_dates(offline, a, b, added, held, expected) -> None:
    """Timestamps, then new-versus-existing, then dated-versus-undated; else unknown (None)."""
    objs = {"a": route("apples", created=a), "b": route("bananas", created=b)}
    state = ClusterState.from_objects([objs[k] for k in held])
    state.offline = offline
    state.added = {("HTTPRoute", objs[k]["metadata"]["namespace"], "shop") for k in added}
    first, second = (gw.Route.from_object(objs[k], kind="HTTPRoute") for k in "ab")
    assert claimed_before(state, first, second) is expected


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, dict]]:
    code = main(["check", "--policies", POLICY, *args, "-o", "json"])
    document = json.loads(capsys.readouterr().out)
    return code, {f"{r['kind']}/{r['namespace']}/{r['name']}": r for r in document["results"]}


def rules(result: dict) -> list[tuple[str, str]]:
    return [(v["rule"], v["mode"]) for v in result["violations"]]


def test_without_a_baseline_a_tie_warns_both_routes_and_denies_neither(capsys: pytest.CaptureFixture[str]) -> None:
    """Two undated claimants: HostnameOwnerUnknown on both, each naming the other; exit 0."""
    code, results = check(capsys, str(FIXTURES / "change"))
    assert code == 0
    hijack, shop = results["HTTPRoute/apples/hijack"], results["HTTPRoute/zucchini/shop"]
    for result, other in ((hijack, "HTTPRoute zucchini/shop"), (shop, "HTTPRoute apples/hijack")):
        assert result["result"] == "warn"
        assert rules(result) == [("hostnames/HostnameOwnerUnknown", "warn")]
        assert other in result["violations"][0]["message"]
        assert "ownership cannot be decided offline" in result["violations"][0]["message"]


def test_a_baseline_directory_makes_the_addition_the_newer_claimant(capsys: pytest.CaptureFixture[str]) -> None:
    """--baseline DIR: the added route is denied HostnameConflict; the existing one is not judged."""
    code, results = check(capsys, "--baseline", str(FIXTURES / "base"), str(FIXTURES / "change"))
    assert code == 1
    hijack, shop = results["HTTPRoute/apples/hijack"], results["HTTPRoute/zucchini/shop"]
    assert rules(hijack) == [("hostnames/HostnameConflict", "enforce")] and hijack["change"] == "added"
    assert "HTTPRoute zucchini/shop" in hijack["violations"][0]["message"]
    assert shop["change"] == "unchanged" and shop["violations"] == []


def test_a_modified_object_is_judged_as_an_update_of_the_baseline(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A label added to the existing route keeps its claim: an UPDATE keeps what it had."""
    change = tmp_path / "change"
    shutil.copytree(FIXTURES / "change", change)
    text = (change / "zucchini.yaml").read_text()
    (change / "zucchini.yaml").write_text(text.replace("namespace: zucchini}", "namespace: zucchini, labels: {x: y}}"))
    code, results = check(capsys, "--baseline", str(FIXTURES / "base"), str(change))
    assert code == 1
    assert results["HTTPRoute/zucchini/shop"]["change"] == "modified"
    assert results["HTTPRoute/zucchini/shop"]["violations"] == []
    assert rules(results["HTTPRoute/apples/hijack"]) == [("hostnames/HostnameConflict", "enforce")]


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", *args], cwd=cwd,
                   check=True, capture_output=True)


def test_a_baseline_git_revision_reads_the_same_paths_at_that_revision(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--baseline main in a pull request's checkout: what main holds is older than what the branch adds."""
    repo = tmp_path / "fleet"
    shutil.copytree(FIXTURES / "base", repo / "clusters" / "prod")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "platform and zucchini")
    shutil.copy(FIXTURES / "change" / "apples.yaml", repo / "clusters" / "prod" / "apples.yaml")
    monkeypatch.chdir(repo / "clusters")
    code, results = check(capsys, "--baseline", "main", "prod")
    assert code == 1
    assert rules(results["HTTPRoute/apples/hijack"]) == [("hostnames/HostnameConflict", "enforce")]
    assert results["HTTPRoute/zucchini/shop"]["change"] == "unchanged"


def test_an_unknown_revision_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A revision git does not know exits 2 and says so."""
    git(tmp_path, "init", "-q")
    shutil.copytree(FIXTURES / "change", tmp_path / "change")
    monkeypatch.chdir(tmp_path)
    assert main(["check", "--policies", POLICY, "--baseline", "no-such-branch", "change"]) == 2
    assert "--baseline" in capsys.readouterr().err


def test_in_a_policy_test_the_resource_is_newer_than_the_cluster(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """``routewarden test``: the route under test loses to the cluster's route; two resources tie."""
    pair = []
    for namespace in ("apples", "zucchini"):
        obj = route(namespace)
        obj["metadata"]["name"], obj["spec"]["hostnames"] = "pair", ["pair.example.com"]
        pair.append(obj)
    (tmp_path / "pair.yaml").write_text("---\n".join(json.dumps(o) + "\n" for o in pair))
    (tmp_path / "routewarden-test.yaml").write_text(json.dumps({
        "apiVersion": "routewarden.dev/v1alpha1", "kind": "Test", "metadata": {"name": "ownership"},
        "policies": [POLICY], "cluster": [str(FIXTURES / "base")],
        "resources": [str(FIXTURES / "change" / "apples.yaml"), "pair.yaml"],
        "results": [
            {"resource": "HTTPRoute/apples/hijack", "result": "deny", "rules": ["hostnames/HostnameConflict"]},
            {"resource": "HTTPRoute/apples/pair", "result": "warn", "rules": ["hostnames/HostnameOwnerUnknown"]},
            {"resource": "HTTPRoute/zucchini/pair", "result": "warn", "rules": ["hostnames/HostnameOwnerUnknown"]},
        ],
    }))
    code = main(["test", str(tmp_path)])
    assert code == 0, capsys.readouterr().out
