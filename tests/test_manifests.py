"""Manifests from files, directories and stdin, with the positions the CLI points at."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import pytest

from webhook.state import manifests
from webhook.state.manifests import Manifest, ManifestError, load_manifests, load_stream, state_from_manifests

MULTI = textwrap.dedent("""\
    # a leading comment
    apiVersion: v1
    kind: Namespace
    metadata:
      name: apples
    ---
    ---
    # an empty document above and a comment here
    apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata:
      name: web
      namespace: apples
    spec:
      hostnames: [apples.example.com]
      parentRefs: [{name: shared, namespace: infra}]
    ...
    """)

LISTED = textwrap.dedent("""\
    apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRouteList
    items:
    - metadata: {name: one, namespace: apples}
      spec: {hostnames: [one.apples.example.com]}
    - metadata: {name: two, namespace: apples}
    ---
    apiVersion: v1
    kind: List
    items:
      - apiVersion: v1
        kind: Namespace
        metadata: {name: bananas}
    """)


def brief(found: list[Manifest]) -> list[tuple[str, str, int, int, int | None]]:
    return [(m.obj["kind"], m.obj["metadata"]["name"], m.line, m.doc_index, m.item_index) for m in found]


def test_multi_document_yaml_gives_each_object_the_line_it_starts_on() -> None:
    """Every non-empty document is one object, located at its first line of content."""
    found = load_stream(io.StringIO(MULTI), name="multi.yaml")
    assert brief(found) == [("Namespace", "apples", 2, 0, None), ("HTTPRoute", "web", 9, 2, None)]
    assert found[1].location == "multi.yaml:9"


def test_list_documents_are_unpacked_into_items_with_their_own_lines() -> None:
    """``*List`` items are objects of their own; typed lists lend their kind and apiVersion."""
    found = load_stream(LISTED, name="list.yaml")
    assert brief(found) == [
        ("HTTPRoute", "one", 4, 0, 0),
        ("HTTPRoute", "two", 6, 0, 1),
        ("Namespace", "bananas", 11, 1, 0),
    ]
    assert found[0].obj["apiVersion"] == "gateway.networking.k8s.io/v1"


def test_directories_are_walked_recursively_in_order_skipping_other_files(tmp_path: Path) -> None:
    """Nested *.yaml, *.yml and *.json files load in sorted order; other and hidden files do not."""
    (tmp_path / "b" / "deep").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    (tmp_path / "a.yaml").write_text(MULTI)
    (tmp_path / "b" / "deep" / "c.yml").write_text(LISTED)
    (tmp_path / "b" / "gw.json").write_text(json.dumps(
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
         "metadata": {"name": "shared", "namespace": "infra"},
         "spec": {"gatewayClassName": "any", "listeners": []}}))
    (tmp_path / "README.md").write_text("# not a manifest: [")
    (tmp_path / ".git" / "x.yaml").write_text("kind: [")
    found = load_manifests([tmp_path])
    assert [(Path(m.path).relative_to(tmp_path).as_posix(), m.obj["metadata"]["name"]) for m in found] == [
        ("a.yaml", "apples"), ("a.yaml", "web"),
        ("b/deep/c.yml", "one"), ("b/deep/c.yml", "two"), ("b/deep/c.yml", "bananas"),
        ("b/gw.json", "shared"),
    ]


def test_a_dash_reads_standard_input(monkeypatch: pytest.MonkeyPatch) -> None:
    """``-`` loads the manifests piped in, named ``<stdin>``."""
    monkeypatch.setattr(manifests.sys, "stdin", io.StringIO(MULTI))
    found = load_manifests(["-"])
    assert [(m.path, m.obj["metadata"]["name"]) for m in found] == [("<stdin>", "apples"), ("<stdin>", "web")]


@pytest.mark.parametrize(
    ("text", "line", "column", "words"),
    [
        ("kind: Namespace\nmetadata:\n  name: a\n   bad: indent\n", 4, 7, "mapping values"),
        ("a: 1\n---\nitems: [1, 2\nkind: x\n", 4, 5, "flow sequence"),
        ("metadata:\n  name: \"unterminated\n", 3, 1, "quoted scalar"),
        ("a: 1\n---\n- just\n- a list\n", 3, None, "must be a mapping"),
    ],
    ids=["indentation", "unclosed-flow", "unterminated-quote", "not-a-mapping"],
)
def test_malformed_files_raise_errors_that_name_the_file_line_and_column(
    tmp_path: Path, text: str, line: int, column: int | None, words: str
) -> None:
    """The error carries the position from the YAML mark, ready for ``path:line:col: message``."""
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(ManifestError) as caught:
        load_manifests([path])
    error = caught.value
    assert (error.path, error.line, error.column) == (str(path), line, column)
    assert words in error.message
    assert str(error).startswith(f"{path}:{line}")


def test_malformed_json_reports_its_position(tmp_path: Path) -> None:
    """JSON files are parsed as JSON and report the decoder's line and column."""
    path = tmp_path / "bad.json"
    path.write_text('{\n  "kind": "Namespace",\n  "metadata": {"name": "x",}\n}\n')
    with pytest.raises(ManifestError) as caught:
        load_manifests([path])
    assert (caught.value.line, caught.value.column) == (3, 28)


def test_a_missing_file_is_a_manifest_error(tmp_path: Path) -> None:
    """A path that does not exist is reported, not raised as a bare OSError."""
    with pytest.raises(ManifestError, match="No such file"):
        load_manifests([tmp_path / "nope.yaml"])


def test_the_offline_view_holds_known_kinds_and_leaves_undeclared_namespaces_unknown() -> None:
    """Objects become an offline view; a namespace only used, never declared, stays unknown."""
    state = state_from_manifests(load_stream(MULTI + "---\n" + LISTED, name="all.yaml"))
    assert state.synced and state.offline
    assert state.count("HTTPRoute") == 3
    assert state.has_namespace("apples") and state.has_namespace("bananas")
    assert state.namespace_labels("infra") is None
    assert [r.name for r in state.routes_with_hostname("apples.example.com")] == ["web"]
