"""Policy unit tests: folders of policies + resources + expected results.

A test folder holds ``routewarden-test.yaml`` (JSON Schema:
``webhook/policy/schemas/routewarden-test.json``; the format is documented in
``docs/policy-tests.md``)::

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
        annotations: {key: value}          # optional: annotations after the mutation (null: absent)
        labels: {key: value}               # optional: labels after the mutation (null: absent)
        loadBalancerClass: service.k8s.aws/nlb   # optional: spec values after the mutation
        externalTrafficPolicy: Local

Every expected result must match an evaluated object (a test that checks nothing is an
error). An evaluated object without an expected result is *not checked*; with
``strict`` a governed one without an expectation fails.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonpatch
import yaml
from jsonschema import Draft202012Validator

from . import report
from .admission import UserInfo
from .offline import OFFLINE_USER, ObjectResult, evaluate, mark_added, store_mutated, with_namespace
from .policy.loader import SCHEMA_DIR, load_paths
from .state.manifests import load_manifests
from .state.store import ClusterState

TEST_FILE = "routewarden-test.yaml"
SCHEMA_FILE = SCHEMA_DIR / "routewarden-test.json"
RESULTS = ("allow", "warn", "deny")
OPERATIONS = ("CREATE", "UPDATE", "DELETE")
# Expectations on the mutated object: (key in results[], path into the object, what it is called)
SPEC_VALUES = (("loadBalancerClass", "spec.loadBalancerClass"), ("externalTrafficPolicy", "spec.externalTrafficPolicy"))


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
    checked: bool = True  # False: evaluated, but the test expects nothing of it

    @property
    def headline(self) -> str:
        """Expected and actual side by side, with rule ids; or the first thing that differs."""
        if self.expected != self.actual or not self.details:
            return f"expected {self.expected}, got {self.actual}"
        return self.details[0]


@dataclass
class TestCase:
    name: str
    folder: Path
    policies: list[Path]
    cluster: list[Path]
    resources: list[Path]
    requests: list[Mapping[str, Any]] = field(default_factory=list)
    results: list[Mapping[str, Any]] = field(default_factory=list)


@cache
def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def find_tests(root: Path) -> list[Path]:
    if (root / TEST_FILE).is_file():
        return [root]
    return sorted(p.parent for p in root.rglob(TEST_FILE))


def load_objects(paths: list[Path], namespace: str = "default") -> list[dict[str, Any]]:
    """The objects in these files and directories (List kinds unpacked), namespaced as an apply would."""
    return [with_namespace(m.obj, namespace) for m in load_manifests(paths)]


def _where(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_test(folder: Path) -> TestCase:
    path = folder / TEST_FILE
    try:
        spec = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise TestDefinitionError(f"{path}: {exc}") from None
    if not isinstance(spec, dict) or spec.get("kind") != "Test":
        raise TestDefinitionError(f"{path}: expected a document of kind Test")
    errors = sorted(validator().iter_errors(spec), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise TestDefinitionError(f"{path}: " + "; ".join(
            f"{_where(e.absolute_path) or '<document>'}: {e.message}" for e in errors))

    def paths(key: str) -> list[Path]:
        out = [(folder / p).resolve() for p in spec.get(key) or []]
        for p in out:
            if not p.exists():
                raise TestDefinitionError(f"{path}: {key}: {p} does not exist")
        return out

    return TestCase(
        name=(spec.get("metadata") or {}).get("name") or folder.name,
        folder=folder,
        policies=paths("policies"),
        cluster=paths("cluster"),
        resources=paths("resources"),
        requests=list(spec.get("requests") or []),
        results=list(spec["results"]),
    )


def ref_of(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{obj.get('kind')}/{ns}/{meta.get('name')}" if ns else f"{obj.get('kind')}/{meta.get('name')}"


def _fired(result: ObjectResult) -> list[str]:
    return sorted(set(result.validation.rules))


def _said(verdict: str, rules: list[str] | None) -> str:
    """``deny by hostnames/HostnameConflict``: a verdict with the rule ids behind it."""
    if rules is None:
        return verdict
    return f"{verdict} by {', '.join(rules)}" if rules else f"{verdict} by no rule"


def _get(obj: Mapping[str, Any], dotted: str) -> Any:
    node: Any = obj
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def _check(expected: Mapping[str, Any], result: ObjectResult) -> tuple[str, str, list[str]]:
    """(expected, actual, what differs): the first two side by side, with rule ids."""
    verdict = report.verdict(result)
    rules = sorted(set(expected["rules"])) if "rules" in expected else None
    fired = _fired(result)
    want = _said(expected["result"], rules)
    got = _said(verdict, fired if (rules is not None or verdict != "allow") else None)
    if rules is None and verdict == expected["result"]:
        got = want
    problems = []
    if "patched" in expected and bool(result.patch) != bool(expected["patched"]):
        problems.append(f"patched: expected {str(expected['patched']).lower()}, got patch {list(result.patch)}")
    mutated = jsonpatch.apply_patch(dict(result.object), list(result.patch)) if result.patch else result.object
    for key in ("annotations", "labels"):
        actual = (mutated.get("metadata") or {}).get(key) or {}
        for name, value in (expected.get(key) or {}).items():
            if actual.get(name) != value:
                problems.append(f"{key[:-1]} {name}: expected {value!r}, got {actual.get(name)!r}")
    for key, dotted in SPEC_VALUES:
        if key in expected and _get(mutated, dotted) != expected[key]:
            problems.append(f"{dotted}: expected {expected[key]!r}, got {_get(mutated, dotted)!r}")
    return want, got, problems


def _user(spec: Mapping[str, Any] | None) -> UserInfo:
    if not spec:
        return OFFLINE_USER
    return UserInfo(username=spec.get("username", ""), groups=tuple(spec.get("groups") or ()))


def run_test(case: TestCase, *, strict: bool = False, namespace: str = "default") -> Iterator[Outcome]:
    policies = load_paths(case.policies)
    cluster = load_objects(case.cluster, namespace)
    resources = load_objects(case.resources, namespace)
    state = ClusterState.from_objects(cluster + resources)
    mark_added(state, resources)  # what a test evaluates is newer than its cluster
    store_mutated(resources, policies, state)
    actual: dict[tuple[str, str], ObjectResult] = {}
    for obj in resources:
        validation, mutation = evaluate(obj, policies, state)
        actual[(ref_of(obj), "CREATE")] = ObjectResult(obj, validation, mutation)
    for req in case.requests:
        op = req.get("operation", "CREATE")
        obj, old = req.get("object"), req.get("oldObject")
        obj = with_namespace(obj, namespace) if obj is not None else None
        old = with_namespace(old, namespace) if old is not None else None
        validation, mutation = evaluate(obj, policies, state, operation=op, old=old, user=_user(req.get("user")))
        actual[(ref_of(obj if obj is not None else old), op)] = ObjectResult(obj or old, validation, mutation)
    expected_keys = set()
    for exp in case.results:
        key = (exp["resource"], exp.get("operation", "CREATE"))
        expected_keys.add(key)
        result = actual.get(key)
        if result is None:
            yield Outcome(case.name, key[0], key[1], False, exp["result"], "nothing",
                          (f"no resource or request {key[0]} ({key[1]}) in the test",))
            continue
        want, got, problems = _check(exp, result)
        passed = want == got and not problems
        details = tuple(problems) + (tuple(v.render() for v in result.violations) if not passed else ())
        yield Outcome(case.name, key[0], key[1], passed, want, got, details)
    for key in sorted(set(actual) - expected_keys):
        result = actual[key]
        got = _said(report.verdict(result), _fired(result) or None)
        if strict and report.governed(result):
            yield Outcome(case.name, key[0], key[1], False, got, got,
                          (f"no expected result in results (--strict); it gives {got}",))
        else:
            yield Outcome(case.name, key[0], key[1], True, "", got, (), checked=False)
