"""``routewarden test`` as a subprocess: the scenario suites pass, broken ones do not."""

from __future__ import annotations

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "webhook", "test", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_scenario_suites_pass() -> None:
    """``routewarden test tests/scenarios`` exits 0 and reports every folder ok."""
    proc = run("tests/scenarios")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 failed, 0 broken" in proc.stdout
    assert "FAIL" not in proc.stdout


def test_a_wrong_expectation_fails_with_what_was_expected_and_what_happened() -> None:
    """An expectation the engine does not meet: exit 1, naming the resource and the rule that fired."""
    proc = run("tests/cli/suite-broken-expectation")
    assert proc.returncode == 1, proc.stdout
    assert "FAIL a-wrong-expectation-fails" in proc.stdout
    assert "HTTPRoute/apples/shop (CREATE): expected allow, got deny" in proc.stdout
    assert "RefNotPermitted" in proc.stdout


def test_a_broken_expectation_in_a_copied_scenario_fails(tmp_path: Path) -> None:
    """Flip one expected result of a real scenario: the suite that passed now fails."""
    folder = tmp_path / "scenarios"
    for name in ("_shared", "references"):
        shutil.copytree(REPO / "tests/scenarios" / name, folder / name)
    assert run(str(folder)).returncode == 0
    spec = folder / "references" / "routewarden-test.yaml"
    text = spec.read_text()
    flipped = text.replace("{resource: HTTPRoute/apples/granted, result: allow",
                           "{resource: HTTPRoute/apples/granted, result: deny")
    assert flipped != text
    spec.write_text(flipped)
    proc = run(str(folder))
    assert proc.returncode == 1
    assert "1 failed, 0 broken" in proc.stdout
    assert "HTTPRoute/apples/granted (CREATE): expected deny by no rule, got allow by no rule" in proc.stdout


def test_a_broken_test_definition_exits_2() -> None:
    """A test folder naming a missing file is a broken definition, not a pass or a failure."""
    proc = run("tests/cli/suite-broken-definition")
    assert proc.returncode == 2
    assert "broken test definition" in proc.stdout and "does-not-exist.yaml" in proc.stdout


@pytest.mark.parametrize(
    "fields, problem",
    [
        ({"requests": ["just-a-string"]}, "requests[0]: 'just-a-string' is not of type 'object'"),
        ({"requests": [{"operation": "CREATE", "object": [1, 2]}]}, "requests[0].object: [1, 2] is not of type 'object'"),
        ({"requests": [{"operation": "PATCH", "object": {"kind": "HTTPRoute"}}]},
         "requests[0].operation: 'PATCH' is not one of"),
        ({"resources": 5}, "resources: 5 is not of type 'array'"),
        ({"results": [{"resource": "HTTPRoute/apples/shop", "result": "allowed"}]}, "results[0].result: 'allowed'"),
        ({"expected": []}, "Additional properties are not allowed ('expected' was unexpected)"),
    ],
)
def test_a_malformed_test_definition_is_broken_not_a_crash(tmp_path: Path, fields: dict, problem: str) -> None:
    """A requests or resources entry of the wrong shape exits 2 naming it, without a traceback."""
    spec = {"apiVersion": "routewarden.dev/v1alpha1", "kind": "Test", "metadata": {"name": "malformed"},
            "policies": [str(REPO / "tests/cli/policies")],
            "results": [{"resource": "HTTPRoute/apples/shop", "result": "allow"}], **fields}
    (tmp_path / "routewarden-test.yaml").write_text(yaml.safe_dump(spec))
    proc = run(str(tmp_path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"ERROR {tmp_path.name} " in proc.stdout and problem in proc.stdout


def test_a_directory_without_tests_is_a_usage_error(tmp_path: Path) -> None:
    """No routewarden-test.yaml below the directory: exit 2, not an empty pass."""
    proc = run(str(tmp_path))
    assert proc.returncode == 2 and "no routewarden-test.yaml" in proc.stderr


def test_junit_output_has_a_suite_per_folder_and_a_failure_per_unmet_expectation() -> None:
    """JUnit: one testsuite per folder, one testcase per expectation, failures and errors counted."""
    proc = run("tests/scenarios", "tests/cli/suite-broken-expectation", "tests/cli/suite-broken-definition",
               "-o", "junit")
    assert proc.returncode == 2  # a broken definition wins over a failure
    root = ET.fromstring(proc.stdout)
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    scenario_files = list((REPO / "tests" / "scenarios").rglob("routewarden-test.yaml"))
    assert len(suites) == len(scenario_files) + 2
    broken = suites["a-wrong-expectation-fails"]
    [case] = broken.findall("testcase")
    assert case.find("failure") is not None and broken.get("failures") == "1"
    assert suites["suite-broken-definition"].find("testcase/error") is not None
    assert root.get("failures") == "1" and root.get("errors") == "1"
    cases = root.findall("testsuite/testcase")
    expectations = sum(len(yaml.safe_load(f.read_text())["results"]) for f in scenario_files)
    assert int(root.get("tests")) == len(cases) == expectations + 1 + 1
