"""Manifests from files: the offline source of a cluster view.

The CLI checks what is in Git, so every object keeps where it came from (file and line)
and a finding can point at it. Files are YAML (multi-document) or JSON; directories are
walked recursively; ``-`` reads standard input. ``kind: *List`` documents are unpacked
into their items, each with its own line.

Malformed YAML raises :class:`ManifestError` with the position PyYAML reports, so the
user sees ``path:line:column: message`` rather than a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

from .store import ClusterState

try:  # the C loader is several times faster on big repositories
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader

SUFFIXES = (".yaml", ".yml", ".json")
STDIN = "-"


@dataclass(frozen=True, slots=True)
class Manifest:
    """One Kubernetes object and where it was written (``line`` is 1-based)."""

    obj: dict[str, Any]
    path: str
    line: int
    doc_index: int
    item_index: int | None = None  # position inside a ``*List`` document

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}"


class ManifestError(Exception):
    """A file that cannot be read as manifests, with the position of the problem."""

    def __init__(self, message: str, *, path: str, line: int | None = None, column: int | None = None):
        self.message = message
        self.path = path
        self.line = line
        self.column = column
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.message}"


def load_manifests(paths: Iterable[str | os.PathLike[str]]) -> list[Manifest]:
    """Every object in ``paths`` (files, directories, or ``-`` for stdin), in order."""
    out: list[Manifest] = []
    for path in paths:
        if str(path) == STDIN:
            out.extend(load_stream(sys.stdin, name="<stdin>"))
            continue
        for file in _files(Path(path)):
            out.extend(load_file(file))
    return out


def load_file(path: str | os.PathLike[str]) -> list[Manifest]:
    """Objects in one file; ``.json`` files are parsed as JSON, anything else as YAML."""
    name = str(path)
    try:
        with open(path, encoding="utf-8") as fh:
            if name.endswith(".json"):
                return _load_json(fh.read(), name=name)
            return load_stream(fh, name=name)
    except OSError as exc:
        raise ManifestError(exc.strerror or str(exc), path=name) from exc
    except UnicodeDecodeError as exc:
        raise ManifestError(f"not UTF-8 text: {exc.reason}", path=name) from exc


def load_stream(stream: TextIO | str, *, name: str = "<stdin>") -> list[Manifest]:
    """Objects in a YAML stream (JSON is YAML too), with the line each one starts on."""
    loader = _Loader(stream)
    out: list[Manifest] = []
    try:
        index = 0
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                doc = loader.construct_document(node)
                out.extend(_objects(doc, node=node, path=name, doc_index=index))
            index += 1
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise ManifestError(
            message or "malformed YAML",
            path=name,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from exc
    except yaml.YAMLError as exc:
        raise ManifestError(f"malformed YAML: {exc}", path=name) from exc
    finally:
        loader.dispose()
    return out


def load_git(ref: str, paths: Iterable[str | os.PathLike[str]]) -> list[Manifest]:
    """Every object in ``paths`` as the files were at git revision ``ref`` (a branch, a
    tag, a commit) of the repository holding them. A path that did not exist then holds
    nothing; each object is named ``ref:path`` with its line."""
    out: list[Manifest] = []
    for path in paths:
        if str(path) == STDIN:
            raise ManifestError("standard input has no git history: render the baseline into a file or "
                                "directory and pass that instead of a revision", path=f"--baseline {ref}")
        target = Path(path).resolve()
        top = Path(_git(["rev-parse", "--show-toplevel"], cwd=_existing(target), ref=ref).strip())
        try:
            relative = target.relative_to(top)
        except ValueError:
            raise ManifestError(f"{path} is not in the git repository at {top}", path=f"--baseline {ref}") from None
        listing = _git(["ls-tree", "-r", "-z", "--name-only", "--full-tree", ref, "--", str(relative)], cwd=top, ref=ref)
        for name in sorted(filter(None, listing.split("\0"))):
            below = Path(name).relative_to(relative).parts if Path(name) != relative else ()
            if any(part.startswith(".") for part in below) or not name.endswith(SUFFIXES):
                continue
            text = _git(["show", f"{ref}:{name}"], cwd=top, ref=ref)
            where = f"{ref}:{name}"
            out.extend(_load_json(text, name=where) if name.endswith(".json") else load_stream(text, name=where))
    return out


def _existing(path: Path) -> Path:
    while not path.is_dir():
        path = path.parent
    return path


def _git(args: list[str], *, cwd: Path, ref: str) -> str:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ManifestError(f"cannot run git: {exc}", path=f"--baseline {ref}") from exc
    if proc.returncode != 0:
        raise ManifestError(proc.stderr.strip() or f"git {args[0]} failed", path=f"--baseline {ref}")
    return proc.stdout


def state_from_manifests(manifests: Iterable[Manifest]) -> ClusterState:
    """An offline cluster view holding the objects the rules know about.

    Namespaces that objects use but no manifest declares stay unknown: whether that is a
    problem is for the rules to say, not the loader.
    """
    return ClusterState.from_objects(m.obj for m in manifests)


# ---------------------------------------------------------------------------- helpers
def _files(path: Path) -> Iterator[Path]:
    """A file as given, or a directory's manifest files in path order, hidden entries skipped."""
    if not path.is_dir():
        yield path
        return
    found = []
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.extend(Path(root, f) for f in files if not f.startswith(".") and f.endswith(SUFFIXES))
    yield from sorted(found, key=lambda p: p.relative_to(path).parts)


def _objects(doc: Any, *, node: yaml.Node, path: str, doc_index: int) -> Iterator[Manifest]:
    """A document's objects: nothing for an empty one, the items of a ``*List``."""
    if doc is None:
        return
    line = node.start_mark.line + 1
    if not isinstance(doc, dict):
        raise ManifestError(
            f"a manifest must be a mapping, not {type(doc).__name__}", path=path, line=line
        )
    if not _is_list(doc):
        yield Manifest(doc, path, line, doc_index)
        return
    item_nodes = _items_node_lines(node)
    for i, item in enumerate(doc["items"]):
        item_line = item_nodes[i] if i < len(item_nodes) else line
        if not isinstance(item, dict):
            raise ManifestError("a List item must be a mapping", path=path, line=item_line)
        yield Manifest(_with_type(item, doc), path, item_line, doc_index, i)


def _is_list(doc: dict[str, Any]) -> bool:
    kind = doc.get("kind")
    return isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list)


def _with_type(item: dict[str, Any], listing: dict[str, Any]) -> dict[str, Any]:
    """Items of a typed list (``HTTPRouteList``) may omit apiVersion and kind: fill them in."""
    if "kind" in item and "apiVersion" in item:
        return item
    out = dict(item)
    if listing["kind"] != "List":
        out.setdefault("kind", listing["kind"][: -len("List")])
    if "apiVersion" in listing:
        out.setdefault("apiVersion", listing["apiVersion"])
    return out


def _items_node_lines(node: yaml.Node) -> list[int]:
    """1-based start lines of each entry under a mapping node's ``items`` key."""
    if not isinstance(node, yaml.MappingNode):
        return []
    for key, value in node.value:
        if getattr(key, "value", None) == "items" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def _load_json(text: str, *, name: str) -> list[Manifest]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(exc.msg, path=name, line=exc.lineno, column=exc.colno) from exc
    if doc is None:
        return []
    if not isinstance(doc, dict):
        raise ManifestError(f"a manifest must be a mapping, not {type(doc).__name__}", path=name, line=1)
    if not _is_list(doc):
        return [Manifest(doc, name, 1, 0)]
    return [Manifest(_with_type(item, doc), name, 1, 0, i) for i, item in enumerate(doc["items"])]
