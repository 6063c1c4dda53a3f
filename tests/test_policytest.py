"""``routewarden test`` quick to write: objects without expectations are "not checked"
(``--strict`` fails governed ones), ``-n`` places objects, mismatches show expected and
actual side by side with rule ids, patches can be asserted, and the folder format has a
JSON Schema every shipped test folder follows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from webhook.cli import main
from webhook.policytest import SCHEMA_FILE, validator

REPO = Path(__file__).resolve().parents[1]
ECHO = REPO / "tests/cli/policytest/echo.yaml"
SERVICE_POLICY = REPO / "policies/servicepolicy-cilium-eks.yaml"
SERVICE = "Service/echo/cilium-gateway-echo"


def folder(tmp_path: Path, results: list[dict], **fields: object) -> Path:
    spec = {"apiVersion": "routewarden.dev/v1alpha1", "kind": "Test", "metadata": {"name": "quick"},
            "policies": [str(SERVICE_POLICY)], "resources": [str(ECHO)], "results": results, **fields}
    (tmp_path / "routewarden-test.yaml").write_text(yaml.safe_dump(spec))
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["test", *args])
    return code, capsys.readouterr().out


NLB = {"resource": SERVICE, "result": "allow", "patched": True,
       "annotations": {"service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
                       "external-dns.alpha.kubernetes.io/hostname": "echo.example.com",
                       "routewarden.dev/not-set": None},
       "loadBalancerClass": "service.k8s.aws/nlb", "externalTrafficPolicy": None}


def test_objects_without_expectations_are_not_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Ungoverned objects and objects with no expected result need none: the folder passes, listing them."""
    code, out = run(capsys, str(folder(tmp_path, [NLB])), "-n", "echo")
    assert code == 0, out
    assert "ok   quick (1/1, 4 not checked)" in out
    assert "not checked: ConfigMap/echo/settings (CREATE): allow" in out
    assert "1 expectation(s): 1 passed, 0 failed, 0 broken, 4 object(s) not checked" in out


def test_strict_fails_governed_objects_without_an_expectation(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """--strict: the Gateway and the route need an expectation; the ConfigMap and Namespace never do."""
    code, out = run(capsys, str(folder(tmp_path, [NLB])), "-n", "echo", "--strict")
    assert code == 1
    assert "Gateway/echo/echo (CREATE): no expected result in results (--strict); it gives allow" in out
    failing = [line for line in out.splitlines() if "(--strict)" in line]
    assert len(failing) == 2
    assert "not checked: ConfigMap/echo/settings" in out and "not checked: Namespace/echo" in out


def test_the_namespace_option_places_objects_without_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """-n apples puts the route in apples, where the expectation looks for it."""
    results = [{"resource": "HTTPRoute/apples/web", "result": "allow"}]
    assert run(capsys, str(folder(tmp_path, results)), "-n", "apples")[0] == 0
    code, out = run(capsys, str(folder(tmp_path, results)))
    assert code == 1 and "HTTPRoute/apples/web (CREATE): expected allow, got nothing" in out


def test_a_mismatch_names_both_rule_ids_side_by_side(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Expected deny by one rule, denied by another: both named, never "expected deny, got deny"."""
    cli = REPO / "tests/cli"
    spec = {"apiVersion": "routewarden.dev/v1alpha1", "kind": "Test", "metadata": {"name": "rules"},
            "policies": [str(cli / "policies")], "cluster": [str(cli / "repo/platform")],
            "requests": [{"object": {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                                     "metadata": {"name": "outsider", "namespace": "cherries"},
                                     "spec": {"parentRefs": [{"name": "shared", "namespace": "infra",
                                                              "sectionName": "http"}],
                                              "hostnames": ["outsider.apples.example.com"]}}}],
            "results": [{"resource": "HTTPRoute/cherries/outsider", "result": "deny",
                         "rules": ["hostnames/HostnameConflict"]}]}
    (tmp_path / "routewarden-test.yaml").write_text(yaml.safe_dump(spec))
    code, out = run(capsys, str(tmp_path))
    assert code == 1
    assert ("HTTPRoute/cherries/outsider (CREATE): expected deny by hostnames/HostnameConflict, got deny by "
            "attachment/NotAllowedByListeners, attachment/NotAllowedByPolicy, hostnames/HostnameNotAllowed") in out
    assert "expected deny, got deny" not in out


@pytest.mark.parametrize(
    "change, headline",
    [
        ({"annotations": {"external-dns.alpha.kubernetes.io/hostname": "www.example.com"}},
         "annotation external-dns.alpha.kubernetes.io/hostname: expected 'www.example.com', got 'echo.example.com'"),
        ({"labels": {"team": "echo"}}, "label team: expected 'echo', got None"),
        ({"loadBalancerClass": "service.k8s.aws/alb"},
         "spec.loadBalancerClass: expected 'service.k8s.aws/alb', got 'service.k8s.aws/nlb'"),
        ({"externalTrafficPolicy": "Local"}, "spec.externalTrafficPolicy: expected 'Local', got None"),
        ({"patched": False}, "patched: expected false, got patch"),
    ],
)
def test_a_patch_mismatch_shows_the_field_that_differs(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       change: dict, headline: str) -> None:
    """When only the patch differs, the line names the field and both values."""
    code, out = run(capsys, str(folder(tmp_path, [{**NLB, **change}])), "-n", "echo")
    assert code == 1
    assert f"{SERVICE} (CREATE): {headline}" in out
    assert "expected allow, got allow" not in out


def test_the_test_file_schema_is_valid_and_every_shipped_folder_follows_it() -> None:
    """routewarden-test.json is a valid 2020-12 schema; the scenario and fixture folders validate."""
    Draft202012Validator.check_schema(json.loads(SCHEMA_FILE.read_text()))
    files = sorted(REPO.glob("tests/**/routewarden-test.yaml"))
    assert len(files) >= 9
    for path in files:
        spec = yaml.safe_load(path.read_text())
        if path.parent.name == "suite-broken-definition":
            continue
        assert not list(validator().iter_errors(spec)), path
