"""Property tests: a mutated policy file loads, or is refused naming its file, document and field.

The shipped policy documents (``policies/*.yaml``, the examples and the test scenarios'
policies) are edited at random: a value replaced by one of another type, a key removed or
added, a list emptied. Loading either succeeds or raises ``PolicyLoadError`` whose every
error names the file and, unless the YAML itself is unreadable, the document; never any
other exception.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webhook.policy.loader import PolicyLoadError, PolicyStore, load_documents

SOURCES = sorted([*REPO.glob("policies/*.yaml"), *REPO.glob("policies/examples/*.yaml"),
                  *REPO.glob("tests/scenarios/_shared/*.yaml")])
DOCUMENTS = [doc for path in SOURCES for doc in yaml.safe_load_all(path.read_text())
             if isinstance(doc, dict) and str(doc.get("apiVersion", "")).startswith("routewarden.dev/")]

SCALARS = st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats(allow_nan=False) | st.text(max_size=20)
VALUES = st.one_of(
    st.recursive(SCALARS, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                 max_leaves=8),
    st.sampled_from(["enforce", "warn", "audit", "off", "*.example.com", "team", "In", "Exists", [], {}, "",
                     "hostnames/HostnameConflict", "x" * 300]),
)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += paths(value, (*prefix, index))
    return out


@st.composite
def mutated_policy_files(draw: st.DrawFn) -> str:
    """One to three documents, each with one to three random edits, as a YAML stream."""
    docs = draw(st.lists(st.sampled_from(DOCUMENTS), min_size=1, max_size=3))
    docs = [yaml.safe_load(yaml.safe_dump(d)) for d in docs]
    for doc in docs:
        for _ in range(draw(st.integers(1, 3))):
            options = paths(doc)
            if not options:
                break
            path = draw(st.sampled_from(options))
            parent = doc
            for part in path[:-1]:
                parent = parent[part]
            action = draw(st.sampled_from(["replace", "delete", "add"]))
            # A copy: sampled_from hands out the same [] and {} every time, and adding a value into
            # the very dict it is made a value of would build a cycle (no YAML document is one).
            if action == "replace":
                parent[path[-1]] = copy.deepcopy(draw(VALUES))
            elif action == "delete":
                del parent[path[-1]]
            elif isinstance(parent[path[-1]], dict):
                key = draw(st.sampled_from(["extra", "mode", "names", "selector", "patterns"]))
                parent[path[-1]][key] = copy.deepcopy(draw(VALUES))
    return yaml.safe_dump_all(docs)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=mutated_policy_files())
def test_a_mutated_policy_loads_or_is_refused_with_its_file_and_document(text: str) -> None:
    """load_documents raises only PolicyLoadError, and each error says where."""
    try:
        load_documents([("mutated.yaml", text)])
    except PolicyLoadError as exc:
        assert exc.errors
        for error in exc.errors:
            assert error.file == "mutated.yaml" and error.message
            assert error.document is not None, str(error)
            assert str(error).startswith(f"mutated.yaml (document {error.document})")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=mutated_policy_files(), cut=st.integers(0, 400), junk=st.sampled_from(["", ":", "- [", "\t", "{", "'"]))
def test_damaged_yaml_is_refused_with_its_file(text: str, cut: int, junk: str) -> None:
    """Truncated or garbled YAML is a PolicyLoadError naming the file (and the line), nothing else."""
    try:
        load_documents([("damaged.yaml", text[:cut] + junk + text[cut:])])
    except PolicyLoadError as exc:
        assert all(e.file == "damaged.yaml" and e.message for e in exc.errors)


def test_the_mutation_base_covers_every_policy_kind() -> None:
    """The documents mutated above include TenancyPolicy, ServicePolicy and TenancyException examples."""
    assert {d["kind"] for d in DOCUMENTS} == {"TenancyPolicy", "ServicePolicy", "TenancyException"}


DENY_ALL = """\
apiVersion: routewarden.dev/v1alpha1
kind: TenancyPolicy
metadata: {name: closed}
spec:
  attachment: {allowedNamespaces: {names: []}}
"""


def test_a_policy_that_would_deny_everything_is_logged_as_a_warning_on_load(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The store loads it (it is valid) and logs a WARNING naming the file and the field."""
    (tmp_path / "closed.yaml").write_text(DENY_ALL)
    caplog.set_level(logging.INFO, logger="routewarden.policy")
    store = PolicyStore(tmp_path)
    assert store.reload() is True
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "closed.yaml" in warning.getMessage() and "allowedNamespaces selects no namespace" in warning.getMessage()
