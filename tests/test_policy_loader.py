"""Policy files: schema errors name the file, document and field; the last good set keeps serving."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from webhook.policy.loader import (
    PolicyLoadError,
    PolicyStore,
    load_documents,
    load_paths,
    schema_for,
    validator,
)

REPO = Path(__file__).resolve().parents[1]
GOOD = """\
apiVersion: routewarden.dev/v1alpha1
kind: TenancyPolicy
metadata: {name: good}
spec:
  hostnames: {required: true}
"""


def errors_of(text: str, name: str = "bad.yaml") -> list:
    with pytest.raises(PolicyLoadError) as info:
        load_documents([(name, text)])
    return info.value.errors


def test_the_shipped_policies_load() -> None:
    """Every policy in policies/ is valid and the set is not empty."""
    policies = load_paths([REPO / "policies"])
    assert {p.name for p in policies.tenancy} >= {"shared-gateway", "gateway-guardrails"}
    assert policies.warnings == ()


def test_the_published_schemas_are_valid_json_schema() -> None:
    """Editors can use the schemas: they pass the metaschema check."""
    for kind in ("TenancyPolicy", "ServicePolicy"):
        assert validator(kind).schema["title"] == kind
        assert schema_for(kind)["type"] == "object"


@pytest.mark.parametrize(
    ("text", "document", "field", "message"),
    [
        (GOOD.replace("required: true", "required: yes-please"), 0, "spec.hostnames.required", "is not of type 'boolean'"),
        (GOOD.replace("hostnames: {required: true}", "mode: block"), 0, "spec.mode", "is not one of"),
        (GOOD.replace("hostnames: {required: true}", "hostnme: {}"), 0, "spec", "Additional properties"),
        (GOOD + "---\n" + GOOD.replace("good", "second").replace("required: true", "unique: 3"), 1,
         "spec.hostnames.unique", "is not of type 'boolean'"),
        (GOOD.replace("hostnames: {required: true}",
                      "attachment: {allowedNamespaces: {selector: {matchExpressions: [{key: team, operator: In}]}}}"),
         0, "spec.attachment.allowedNamespaces.selector.matchExpressions[0]", "'values' is a required property"),
        (GOOD.replace("hostnames: {required: true}", "rules: {hostnames/NoSuchRule: warn}"), 0,
         "spec.rules.hostnames/NoSuchRule", "unknown rule id"),
        (GOOD.replace("hostnames: {required: true}",
                      "hostnames: {allowed: [{namespaces: {names: [a]}, patterns: ['bad host!']}]}"), 0,
         "spec.hostnames.allowed[0].patterns[0]", "is not a hostname"),
        (GOOD.replace("routewarden.dev/v1alpha1", "routewarden.dev/v9"), 0, "apiVersion", "apiVersion must be"),
        (GOOD.replace("TenancyPolicy", "TenantPolicy"), 0, "kind", "unknown kind"),
        (GOOD + "---\n" + GOOD, 1, "metadata.name", "is also defined in"),
        (GOOD.replace("hostnames: {required: true}", "attachment: {partialAttachment: sometimes}"), 0,
         "spec.attachment.partialAttachment", "is not one of"),
    ],
    ids=["wrong-type", "bad-enum", "unknown-field", "second-document", "selector-without-values",
         "unknown-rule", "bad-pattern", "bad-apiversion", "bad-kind", "duplicate-name", "bad-partial-attachment"],
)
def test_an_invalid_policy_is_reported_with_file_document_and_field(text: str, document: int, field: str,
                                                                     message: str) -> None:
    """The error points at the file, the document within it, and the field."""
    errors = errors_of(text)
    assert any(e.file == "bad.yaml" and e.document == document and e.field == field and message in e.message
               for e in errors), [str(e) for e in errors]
    assert f"bad.yaml (document {document}) at {field}" in str(next(e for e in errors if e.field == field))


def test_invalid_yaml_is_reported_with_its_line() -> None:
    """A YAML syntax error names the line and column."""
    errors = errors_of("apiVersion: routewarden.dev/v1alpha1\nkind: [unclosed\n")
    assert errors[0].file == "bad.yaml" and "line 3" in errors[0].message


def test_a_policy_that_would_deny_everything_is_flagged_at_load() -> None:
    """allowedNamespaces selecting nothing loads, with a warning instead of silently denying all."""
    policies = load_documents([("p.yaml", GOOD.replace("hostnames: {required: true}",
                                                       "attachment: {allowedNamespaces: {names: []}}"))])
    assert len(policies.warnings) == 1 and "selects no namespace" in policies.warnings[0]
    classes = load_documents([("p.yaml", GOOD.replace("hostnames: {required: true}",
                                                      "gatewayGuardrails: {allowedClasses: []}"))])
    assert "every Gateway will be denied" in classes.warnings[0]


def test_a_bad_reload_keeps_the_last_good_set(tmp_path: Path) -> None:
    """An invalid change is refused whole; the previous policies keep serving, and errors are kept."""
    reloads: list[bool] = []
    (tmp_path / "a.yaml").write_text(GOOD)
    store = PolicyStore(tmp_path, on_reload=reloads.append)
    assert store.reload() and store.loaded
    good = store.current
    (tmp_path / "b.yaml").write_text(GOOD.replace("good", "other").replace("required: true", "required: 7"))
    assert store.reload() is False
    assert store.current is good
    assert store.errors and store.errors[0].file.endswith("b.yaml")
    (tmp_path / "b.yaml").write_text(GOOD.replace("good", "other"))
    assert store.reload() is True
    assert {p.name for p in store.current.tenancy} == {"good", "other"} and store.errors == []
    assert reloads == [True, False, True]


def test_a_store_with_no_valid_policy_yet_is_not_loaded(tmp_path: Path) -> None:
    """Readiness needs a first good load: an invalid first set leaves the store unloaded."""
    (tmp_path / "a.yaml").write_text("kind: nonsense\n")
    store = PolicyStore(tmp_path)
    assert store.reload() is False and store.loaded is False


def test_subfolders_and_kustomization_files_are_not_policies(tmp_path: Path) -> None:
    """Only files directly in the directory are read, as in a mounted ConfigMap."""
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "kustomization.yaml").write_text("resources: []\n")
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "b.yaml").write_text("not: a policy\n")
    assert [p.name for p in load_paths([tmp_path]).tenancy] == ["good"]


async def test_hot_reload_picks_up_a_symlink_swap(tmp_path: Path) -> None:
    """A ConfigMap update swaps the ..data symlink; the watcher notices the new content."""
    v1, v2 = tmp_path / "v1", tmp_path / "v2"
    v1.mkdir(), v2.mkdir()
    (v1 / "p.yaml").write_text(GOOD)
    (v2 / "p.yaml").write_text(GOOD.replace("good", "swapped"))
    mount = tmp_path / "mount"
    mount.mkdir()
    (mount / "..data").symlink_to(v1)
    (mount / "p.yaml").symlink_to(mount / "..data" / "p.yaml")
    store = PolicyStore(mount)
    store.reload()
    task = asyncio.create_task(store.watch(interval=0.02))
    try:
        (mount / "..data_tmp").symlink_to(v2)
        (mount / "..data_tmp").replace(mount / "..data")
        for _ in range(200):
            if store.current.tenancy and store.current.tenancy[0].name == "swapped":
                break
            await asyncio.sleep(0.01)
        assert store.current.tenancy[0].name == "swapped"
    finally:
        task.cancel()
