"""Policy unit tests: folders of policies + resources + expected results.

A test folder holds ``routewarden-test.yaml``::

    apiVersion: routewarden.dev/v1alpha1
    kind: Test
    metadata: {name: tenants-cannot-hijack-hostnames}
    policies: [../../policies]        # files or directories, relative to this folder
    cluster: [cluster.yaml]           # objects already in the cluster (optional)
    resources: [resources.yaml]       # objects evaluated as CREATE (mutate, then validate)
    requests:                         # explicit operations (optional)
      - operation: DELETE             # CREATE | UPDATE | DELETE
        oldObject: {...}
        object: {...}
        user: {username: alice, groups: [team-a]}
    results:
      - resource: HTTPRoute/apples/route   # Kind/namespace/name, or Kind/name
        operation: CREATE                  # default CREATE
        result: deny                       # allow | warn (allowed with warnings) | deny
        rules: [attachment/NotAllowedByListeners]   # optional: exactly the rule ids that fired
        patched: false                     # optional: whether a JSON Patch is returned
        annotations: {key: value}          # optional: annotations after the mutation

Every resource and request must have an expected result, and every expected result
must match one: a test that checks nothing is an error, not a pass.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonpatch
import yaml

from .admission import UserInfo
from .offline import OFFLINE_USER, ObjectResult, evaluate, mark_added, store_mutated, with_namespace
from .policy.loader import load_paths
from .state.manifests import load_manifests
from .state.store import ClusterState

TEST_FILE = "routewarden-test.yaml"
RESULTS = ("allow", "warn", "deny")
OPERATIONS = ("CREATE", "UPDATE", "DELETE")


class TestDefinitionError(ValueError):
    """The test folder itself is wrong (a missing file, an unknown field)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    test: str
    resource: str
    operation: str
    passed: bool
    expected: str
    actual: str
    details: tuple[str, ...] = ()


@dataclass
class TestCase:
    name: str
    folder: Path
    policies: list[Path]
    cluster: list[Path]
    resources: list[Path]
    requests: list[Mapping[str, Any]] = field(default_factory=list)
    results: list[Mapping[str, Any]] = field(default_factory=list)


def find_tests(root: Path) -> list[Path]:
    if (root / TEST_FILE).is_file():
        return [root]
    return sorted(p.parent for p in root.rglob(TEST_FILE))


def load_objects(paths: list[Path]) -> list[dict[str, Any]]:
    """The objects in these files and directories (List kinds unpacked), namespaced as an apply would."""
    return [with_namespace(m.obj) for m in load_manifests(paths)]


def load_test(folder: Path) -> TestCase:
    path = folder / TEST_FILE
    try:
        spec = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise TestDefinitionError(f"{path}: {exc}") from None
    if not isinstance(spec, dict) or spec.get("kind") != "Test":
        raise TestDefinitionError(f"{path}: expected a document of kind Test")
    unknown = set(spec) - {"apiVersion", "kind", "metadata", "policies", "cluster", "resources", "requests", "results"}
    if unknown:
        raise TestDefinitionError(f"{path}: unknown fields {sorted(unknown)}")

    def paths(key: str) -> list[Path]:
        listed = spec.get(key) or []
        if not isinstance(listed, list) or not all(isinstance(p, str) for p in listed):
            raise TestDefinitionError(f"{path}: {key} must be a list of file or directory paths")
        out = [(folder / p).resolve() for p in listed]
        for p in out:
            if not p.exists():
                raise TestDefinitionError(f"{path}: {key}: {p} does not exist")
        return out

    if not spec.get("policies"):
        raise TestDefinitionError(f"{path}: policies is required")
    if not spec.get("results"):
        raise TestDefinitionError(f"{path}: results is required (a test must expect something)")
    if not isinstance(spec["results"], list):
        raise TestDefinitionError(f"{path}: results must be a list")
    for i, r in enumerate(spec["results"]):
        if not isinstance(r, dict) or r.get("result") not in RESULTS or not r.get("resource"):
            raise TestDefinitionError(f"{path}: results[{i}] needs resource and result ({'|'.join(RESULTS)})")
    requests = spec.get("requests") or []
    if not isinstance(requests, list):
        raise TestDefinitionError(f"{path}: requests must be a list")
    for i, req in enumerate(requests):
        problem = _request_problem(req)
        if problem:
            raise TestDefinitionError(f"{path}: requests[{i}]: {problem}")
    return TestCase(
        name=(spec.get("metadata") or {}).get("name") or folder.name,
        folder=folder,
        policies=paths("policies"),
        cluster=paths("cluster"),
        resources=paths("resources"),
        requests=list(requests),
        results=list(spec["results"]),
    )


def _request_problem(req: Any) -> str:
    """What is wrong with one ``requests`` entry ("" when nothing): a wrong shape is a
    broken definition (exit 2), never a crash that reads like a failed test."""
    if not isinstance(req, dict):
        return "expected a mapping with operation, object and/or oldObject"
    if req.get("operation", "CREATE") not in OPERATIONS:
        return f"operation must be one of {'|'.join(OPERATIONS)}"
    if req.get("object") is None and req.get("oldObject") is None:
        return "needs object or oldObject"
    for key in ("object", "oldObject", "user"):
        if req.get(key) is not None and not isinstance(req[key], dict):
            return f"{key} must be a mapping"
    return ""


def ref_of(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{obj.get('kind')}/{ns}/{meta.get('name')}" if ns else f"{obj.get('kind')}/{meta.get('name')}"


def _verdict(result: ObjectResult) -> str:
    if not result.allowed:
        return "deny"
    return "warn" if result.warnings else "allow"


def _check(expected: Mapping[str, Any], result: ObjectResult) -> list[str]:
    problems = []
    verdict = _verdict(result)
    if verdict != expected["result"]:
        problems.append(f"expected {expected['result']}, got {verdict}")
    if "rules" in expected:
        fired = sorted(set(result.validation.rules))
        if fired != sorted(set(expected["rules"])):
            problems.append(f"expected rules {sorted(set(expected['rules']))}, got {fired}")
    if "patched" in expected and bool(result.patch) != bool(expected["patched"]):
        problems.append(f"expected patched={expected['patched']}, got patch {list(result.patch)}")
    if "annotations" in expected:
        mutated = jsonpatch.apply_patch(dict(result.object), list(result.patch)) if result.patch else result.object
        actual = (mutated.get("metadata") or {}).get("annotations") or {}
        for key, value in (expected["annotations"] or {}).items():
            if actual.get(key) != value:
                problems.append(f"expected annotation {key}={value!r}, got {actual.get(key)!r}")
    return problems


def run_test(case: TestCase) -> Iterator[Outcome]:
    policies = load_paths(case.policies)
    cluster = load_objects(case.cluster)
    resources = load_objects(case.resources)
    state = ClusterState.from_objects(cluster + resources)
    mark_added(state, resources)  # what a test evaluates is newer than its cluster
    store_mutated(resources, policies, state)
    actual: dict[tuple[str, str], ObjectResult] = {}
    for obj in resources:
        validation, mutation = evaluate(obj, policies, state)
        actual[(ref_of(obj), "CREATE")] = ObjectResult(obj, validation, mutation)
    for i, req in enumerate(case.requests):
        op = req.get("operation", "CREATE")
        obj, old = req.get("object"), req.get("oldObject")
        if obj is None and old is None:
            raise TestDefinitionError(f"{case.folder / TEST_FILE}: requests[{i}] needs object or oldObject")
        user_spec = req.get("user") or {}
        user = (
            UserInfo(username=user_spec.get("username", ""), groups=tuple(user_spec.get("groups") or ()))
            if user_spec
            else OFFLINE_USER
        )
        validation, mutation = evaluate(obj, policies, state, operation=op, old=old, user=user)
        actual[(ref_of(obj if obj is not None else old), op)] = ObjectResult(obj or old, validation, mutation)
    expected_keys = set()
    for exp in case.results:
        key = (exp["resource"], exp.get("operation", "CREATE"))
        expected_keys.add(key)
        result = actual.get(key)
        if result is None:
            yield Outcome(case.name, key[0], key[1], False, exp["result"], "missing",
                          (f"no resource or request {key[0]} ({key[1]}) in the test",))
            continue
        problems = _check(exp, result)
        yield Outcome(case.name, key[0], key[1], not problems, exp["result"], _verdict(result),
                      tuple(problems) + tuple(v.render() for v in result.violations if problems))
    for key in sorted(set(actual) - expected_keys):
        yield Outcome(case.name, key[0], key[1], False, "an expected result", _verdict(actual[key]),
                      ("evaluated but has no expected result in results",))
