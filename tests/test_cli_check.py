"""``routewarden check`` run as a subprocess on fixture repositories (tests/cli/)."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CLI = Path("tests/cli")
POLICIES = ["--policies", str(CLI / "policies")]


def check(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "webhook", "check", *args], cwd=REPO, input=stdin,
                          capture_output=True, text=True, timeout=60, check=False)


def as_json(proc: subprocess.CompletedProcess[str]) -> dict:
    return json.loads(proc.stdout)


def by_name(document: dict) -> dict[str, dict]:
    return {f"{r['kind']}/{r['namespace']}/{r['name']}": r for r in document["results"]}


def test_a_commit_adding_a_route_with_its_reference_grant_passes() -> None:
    """The route and the grant it needs, checked together with the repository, exit 0."""
    proc = check(*POLICIES, str(CLI / "repo"), str(CLI / "commit"), "--output", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    route = by_name(as_json(proc))["HTTPRoute/apples/shop"]
    assert route["allowed"] is True and route["violations"] == []


def test_the_same_route_without_its_grant_is_denied() -> None:
    """Without the grant the route is denied with RefNotPermitted, and check exits 1."""
    proc = check(*POLICIES, str(CLI / "repo"), str(CLI / "commit" / "route.yaml"), "--output", "json")
    assert proc.returncode == 1, proc.stderr
    route = by_name(as_json(proc))["HTTPRoute/apples/shop"]
    assert route["allowed"] is False
    assert [v["rule"] for v in route["violations"]] == ["references/RefNotPermitted"]
    assert route["source"] == "tests/cli/commit/route.yaml" and route["line"] == 2


def test_json_output_lists_every_object_with_a_schema_version_and_a_summary() -> None:
    """JSON has schemaVersion, a summary that adds up, and every object (governed or not)."""
    proc = check(*POLICIES, str(CLI / "repo"), str(CLI / "commit" / "route.yaml"), "-o", "json")
    document = as_json(proc)
    assert document["schemaVersion"] == 1 and document["kind"] == "CheckReport"
    results = document["results"]
    assert {r["kind"] for r in results} == {"Namespace", "Gateway", "HTTPRoute", "Service"}
    s = document["summary"]
    assert s["objects"] == len(results) == 8
    assert s["governed"] + s["notGoverned"] == s["objects"]
    assert s["allowed"] + s["warned"] + s["denied"] == s["objects"]
    assert (s["denied"], s["notGoverned"]) == (1, 4)
    for r in results:
        assert set(r) >= {"source", "line", "kind", "namespace", "name", "governed", "allowed", "result",
                          "violations", "warnings", "patch"}


def test_text_output_points_at_file_and_line_with_rule_reason_and_fix() -> None:
    """A denial names the file:line, the rule, the reason, the message and the fix."""
    proc = check(*POLICIES, str(CLI / "repo"), str(CLI / "commit" / "route.yaml"))
    assert proc.returncode == 1
    out = proc.stdout
    assert "tests/cli/commit/route.yaml:2: HTTPRoute apples/shop: DENIED" in out
    assert "references/RefNotPermitted at spec.rules[0].backendRefs[0]" in out
    assert "fix: add a ReferenceGrant in namespace bananas" in out
    assert "Namespace" not in out.replace("namespace", "")  # not governed: counted, not listed
    assert "4 not governed" in out


def test_stdin_is_read_when_the_path_is_a_dash() -> None:
    """``kustomize build | routewarden check -``: objects from standard input, named <stdin>."""
    text = "\n---\n".join(
        p.read_text() for p in sorted((REPO / CLI / "repo").rglob("*.yaml")) + [REPO / CLI / "commit/route.yaml"]
    )
    proc = check(*POLICIES, "-", "-o", "json", stdin=text)
    assert proc.returncode == 1, proc.stderr
    denied = [r for r in as_json(proc)["results"] if not r["allowed"]]
    assert [(r["name"], r["source"]) for r in denied] == [("shop", "<stdin>")]
    assert denied[0]["line"] > 1


def test_malformed_yaml_exits_2_with_the_file_and_position() -> None:
    """A YAML error is a usage error (exit 2) that says path:line:column."""
    proc = check(*POLICIES, str(CLI / "malformed"))
    assert proc.returncode == 2
    assert "tests/cli/malformed/bad.yaml:8:13:" in proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize(
    "args, message",
    [
        (["tests/cli/does-not-exist.yaml"], "does-not-exist.yaml"),
        (["--policies", "tests/cli/nowhere", "tests/cli/repo"], "tests/cli/nowhere"),
        (["--policies", "tests/cli/repo/platform", "tests/cli/repo"], "invalid policies"),
        (["--output", "xml", "tests/cli/repo"], "invalid choice"),
    ],
)
def test_bad_usage_and_unreadable_input_exit_2(args: list[str], message: str) -> None:
    """Missing files, missing or invalid policies and unknown options exit 2 with a message."""
    proc = check(*(args if "--policies" in args else POLICIES + args))
    assert proc.returncode == 2
    assert message in proc.stderr


def test_objects_without_a_namespace_get_the_default_or_the_given_one(tmp_path: Path) -> None:
    """--namespace fills in namespaced objects without one; the verdict follows the namespace."""
    route = (REPO / CLI / "commit" / "route.yaml").read_text().replace("namespace: apples}", "}")
    (tmp_path / "route.yaml").write_text(route)
    repo, commit = str(REPO / CLI / "repo"), str(tmp_path / "route.yaml")
    apples = check(*POLICIES, repo, commit, str(REPO / CLI / "commit/grant.yaml"), "-n", "apples", "-o", "json")
    default = check(*POLICIES, repo, commit, str(REPO / CLI / "commit/grant.yaml"), "-o", "json")
    assert apples.returncode == 0, apples.stdout
    assert by_name(as_json(apples))["HTTPRoute/apples/shop"]["allowed"] is True
    assert default.returncode == 1
    denied = by_name(as_json(default))["HTTPRoute/default/shop"]
    assert "references/RefNotPermitted" in {v["rule"] for v in denied["violations"]}  # the grant is for apples


def test_routes_are_judged_against_the_gateway_as_the_mutating_webhook_stores_it(tmp_path: Path) -> None:
    """A Gateway a ServicePolicy gives allowedRoutes from: All admits another namespace's route."""
    policy = (REPO / CLI / "policies" / "tenancy.yaml").read_text()
    defaults = ("apiVersion: routewarden.dev/v1alpha1\nkind: ServicePolicy\nmetadata: {name: gateway-defaults}\n"
                "spec:\n  gateway:\n    defaultAllowedRoutes: {namespaces: {from: All}}\n")
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "tenancy.yaml").write_text(policy)
    (tmp_path / "policies" / "defaults.yaml").write_text(defaults)
    (tmp_path / "manifests.yaml").write_text(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: shared, namespace: infra}\n"
        "spec:\n  gatewayClassName: cilium\n  listeners: [{name: http, port: 80, protocol: HTTP}]\n---\n"
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: web, namespace: apples}\n"
        "spec: {parentRefs: [{name: shared, namespace: infra}], hostnames: [web.apples.example.com]}\n")
    inputs = (str(REPO / CLI / "repo/platform/namespaces.yaml"), str(tmp_path / "manifests.yaml"))
    mutated = check("--policies", str(tmp_path / "policies"), *inputs, "-o", "json")
    as_written = check("--policies", str(tmp_path / "policies/tenancy.yaml"), *inputs)
    assert mutated.returncode == 0, mutated.stdout + mutated.stderr
    assert by_name(as_json(mutated))["Gateway/infra/shared"]["patch"]
    assert as_written.returncode == 1 and "NotAllowedByListeners" in as_written.stdout


def test_warnings_fail_only_with_warnings_as_errors(tmp_path: Path) -> None:
    """A rule in warn mode only warns: exit 0, or 1 with --warnings-as-errors."""
    policy = (REPO / CLI / "policies" / "tenancy.yaml").read_text()
    (tmp_path / "soft.yaml").write_text(policy + "  rules: {references/RefNotPermitted: warn}\n")
    args = ("--policies", str(tmp_path / "soft.yaml"), str(REPO / CLI / "repo"), str(REPO / CLI / "commit/route.yaml"))
    relaxed, strict = check(*args, "-o", "json"), check(*args, "-o", "json", "--warnings-as-errors")
    assert relaxed.returncode == 0 and strict.returncode == 1
    route = by_name(as_json(relaxed))["HTTPRoute/apples/shop"]
    assert route["result"] == "warn" and route["violations"][0]["mode"] == "warn"
    assert any("RefNotPermitted" in w for w in route["warnings"])
    assert as_json(relaxed)["summary"]["failed"] == 0 and as_json(strict)["summary"]["failed"] == 1


def test_junit_output_has_one_testcase_per_object_and_a_failure_per_denial() -> None:
    """JUnit XML parses, and its suites, cases, failures and skips add up."""
    proc = check(*POLICIES, str(CLI / "repo"), str(CLI / "commit" / "route.yaml"), "-o", "junit")
    assert proc.returncode == 1
    root = ET.fromstring(proc.stdout)
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    cases = [c for s in suites for c in s.findall("testcase")]
    assert len(cases) == int(root.get("tests")) == 8
    failures = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failures] == ["HTTPRoute/apples/shop"]
    assert failures[0].find("failure").get("type") == "references/RefNotPermitted"
    assert int(root.get("failures")) == 1 and int(root.get("skipped")) == 4
    for suite in suites:
        assert int(suite.get("tests")) == len(suite.findall("testcase"))
        assert int(suite.get("failures")) == sum(1 for c in suite.findall("testcase") if c.find("failure") is not None)


def test_junit_output_is_valid_for_junitparser(tmp_path: Path) -> None:
    """A JUnit reader (junitparser) reads the same counts."""
    junitparser = pytest.importorskip("junitparser")
    proc = check(*POLICIES, str(CLI / "repo"), str(CLI / "commit" / "route.yaml"), "-o", "junit")
    (tmp_path / "report.xml").write_text(proc.stdout)
    xml = junitparser.JUnitXml.fromfile(str(tmp_path / "report.xml"))
    suites = list(xml)
    assert sum(s.tests for s in suites) == 8
    assert sum(s.failures for s in suites) == 1
    assert sum(s.skipped for s in suites) == 4


def test_cluster_mode_lays_the_manifests_over_the_live_objects(tmp_path: Path) -> None:
    """--cluster lists the (fake) apiserver once: a live route's hostname is taken, a live grant counts."""
    from kubeapi import FakeKubeAPI

    api = FakeKubeAPI()
    api.register_watched()
    with api.in_thread():
        for manifest in ("repo/platform/namespaces.yaml", "repo/platform/gateway.yaml", "commit/grant.yaml"):
            for doc in yaml.safe_load_all((REPO / CLI / manifest).read_text()):
                for obj in doc.get("items") or [doc]:
                    api.create(obj["kind"], obj)
        api.create("HTTPRoute", {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                                 "metadata": {"name": "owner", "namespace": "bananas"},
                                 "spec": {"parentRefs": [{"name": "shared", "namespace": "infra"}],
                                          "hostnames": ["*.apples.example.com"]}})
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": api.url}}],
            "users": [{"name": "fake", "user": {}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
        }))
        proc = check(*POLICIES, "--cluster", "--kubeconfig", str(kubeconfig), str(CLI / "commit" / "route.yaml"),
                     "-o", "json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    [route] = as_json(proc)["results"]
    rules = {v["rule"] for v in route["violations"]}
    assert rules == {"hostnames/HostnameConflict"}  # the live grant in bananas permits the backend
    assert "HTTPRoute bananas/owner" in route["violations"][0]["message"]


def test_cluster_mode_without_a_reachable_cluster_is_a_usage_error(tmp_path: Path) -> None:
    """An unusable kubeconfig exits 2 with a message, not a traceback."""
    (tmp_path / "kubeconfig").write_text("not: [a kubeconfig")
    proc = check(*POLICIES, "--cluster", "--kubeconfig", str(tmp_path / "kubeconfig"), str(CLI / "commit"))
    assert proc.returncode == 2 and "--cluster" in proc.stderr and "Traceback" not in proc.stderr


def test_a_policy_directory_without_policies_is_a_usage_error(tmp_path: Path) -> None:
    """A mistyped or empty --policies must not turn the CI gate into a silent pass."""
    proc = check("--policies", str(tmp_path), "tests/cli/commit/route.yaml")
    assert proc.returncode == 2 and "no policy documents" in proc.stderr
