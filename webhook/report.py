"""Output formats of the offline commands: the ``check`` JSON document, text, and JUnit XML.

The JSON document is a public interface (CI scripts parse it), so its shape is fixed by
``CHECK_SCHEMA_VERSION`` and documented in ``docs/gitops.md``; a change that removes or
renames a field bumps the version. JUnit XML follows the schema Jenkins, GitLab and
GitHub test reporters read: ``testsuites > testsuite > testcase > failure|error|skipped``.

Everything here is a pure function from results to text.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Literal

from . import __version__
from . import gatewayapi as gw
from .decision import Mode
from .offline import ObjectResult
from .state.kinds import WATCHED_KINDS

CHECK_SCHEMA_VERSION = 1
Verdict = Literal["allow", "warn", "deny"]

# Kinds the engine has rules for: validated Gateway API kinds and the mutated Service.
GOVERNED_KINDS: frozenset[tuple[str, str]] = frozenset(
    {(gw.GROUP, k) for k in gw.ROUTE_KINDS | {"Gateway", "ListenerSet", "ReferenceGrant"}} | {("", "Service")}
)


GATEWAY_API_KINDS = frozenset(k.kind for k in WATCHED_KINDS if k.group == gw.GROUP)


def group_of(obj: Mapping[str, Any]) -> str:
    return str(obj.get("apiVersion") or "").rpartition("/")[0]


def governed(result: ObjectResult) -> bool:
    """Whether the engine has anything to say about this object's kind (or said something)."""
    kind = (group_of(result.object), str(result.object.get("kind") or ""))
    return kind in GOVERNED_KINDS or bool(result.violations or result.warnings or result.patch)


def lookalike(obj: Mapping[str, Any]) -> bool:
    """An object of another API group named like a Gateway API kind (an Istio Gateway)."""
    kind = obj.get("kind")
    return (isinstance(kind, str) and kind in GATEWAY_API_KINDS and group_of(obj) != gw.GROUP)


def verdict(result: ObjectResult) -> Verdict:
    if not result.allowed:
        return "deny"
    return "warn" if result.warnings else "allow"


def failed(result: ObjectResult, *, warnings_as_errors: bool = False) -> bool:
    """A denial fails a check; so does a warning when warnings count as errors."""
    v = verdict(result)
    return v == "deny" or (warnings_as_errors and v == "warn")


# ----------------------------------------------------------------------------- JSON
def result_to_dict(result: ObjectResult) -> dict[str, Any]:
    meta = result.object.get("metadata") or {}
    out: dict[str, Any] = {
        "source": result.source,
        "line": result.line,
        "apiVersion": result.object.get("apiVersion", ""),
        "kind": result.object.get("kind", ""),
        "namespace": meta.get("namespace", ""),
        "name": meta.get("name", ""),
        "governed": governed(result),
        "allowed": result.allowed,
        "result": verdict(result),
        "violations": [v.to_dict() for v in result.violations],
        "warnings": list(result.warnings),
        "info": list(result.info),
        "patch": list(result.patch),
        "change": result.change or None,
        "skipped": result.skipped or None,
        "exceptions": [u.to_dict() for u in result.validation.exceptions],
    }
    if result.validation.code != 200 and not result.violations:
        out["error"] = {"code": result.validation.code, "reason": result.validation.reason,
                        "message": result.validation.message}
    return out


def summary(results: Sequence[ObjectResult], *, warnings_as_errors: bool = False) -> dict[str, int]:
    verdicts = Counter(verdict(r) for r in results)
    return {
        "objects": len(results),
        "governed": sum(1 for r in results if governed(r)),
        "notGoverned": sum(1 for r in results if not governed(r)),
        "allowed": verdicts["allow"],
        "warned": verdicts["warn"],
        "denied": verdicts["deny"],
        "patched": sum(1 for r in results if r.patch),
        "failed": sum(1 for r in results if failed(r, warnings_as_errors=warnings_as_errors)),
        "unchanged": sum(1 for r in results if r.change == "unchanged" and not r.skipped),
        "skipped": sum(1 for r in results if r.skipped),
    }


def check_json(results: Sequence[ObjectResult], *, warnings_as_errors: bool = False) -> str:
    """The ``check --output json`` document: every object, governed or not."""
    document = {
        "schemaVersion": CHECK_SCHEMA_VERSION,
        "kind": "CheckReport",
        "warningsAsErrors": warnings_as_errors,
        "summary": summary(results, warnings_as_errors=warnings_as_errors),
        "results": [result_to_dict(r) for r in results],
    }
    return json.dumps(document, indent=2) + "\n"


# ----------------------------------------------------------------------------- text
def where(result: ObjectResult) -> str:
    if result.line is None:
        return result.source or "<unknown>"
    return f"{result.source}:{result.line}"


def describe(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{obj.get('kind', '')} {ns}/{meta.get('name', '')}" if ns else f"{obj.get('kind', '')} {meta.get('name', '')}"


_LABEL = {"allow": "ok", "warn": "WARN", "deny": "DENIED"}


_SEVERITY = {Mode.ENFORCE: 0, Mode.WARN: 1, Mode.AUDIT: 2}
PATCH_VALUE_LIMIT = 200


def patch_lines(op: Mapping[str, Any]) -> list[str]:
    """One JSON Patch operation with the values it sets (``add /spec/x = "y"``); a map it
    adds whole (all the annotations of a Service that had none) is shown key by key."""
    path, value = str(op.get("path")), op.get("value")
    if "value" in op and isinstance(value, dict) and value:
        return [line for key in sorted(value) for line in patch_lines(
            {"op": op.get("op"), "path": f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}",
             "value": value[key]})]
    text = f"{op.get('op')} {path}"
    if "value" in op:
        shown = json.dumps(value, sort_keys=True)
        text += f" = {shown if len(shown) <= PATCH_VALUE_LIMIT else shown[:PATCH_VALUE_LIMIT] + '...'}"
    return [text]


def result_text(result: ObjectResult) -> list[str]:
    """The object's line, then what denies it, what warns, what was excepted, the patch."""
    lines = [f"{where(result)}: {describe(result.object)}: {_LABEL[verdict(result)]}"]
    if result.validation.code != 200 and not result.violations:
        lines.append(f"  {result.validation.reason}: {result.validation.message}")
    for v in sorted(result.violations, key=lambda v: _SEVERITY[v.mode]):
        mode = "" if v.mode is Mode.ENFORCE else f", {v.mode.value} only"
        at = f" at {v.field}" if v.field else ""
        policy = f" (policy {v.policy}{mode})" if v.policy else (f" ({v.mode.value} only)" if mode else "")
        lines.append(f"  {v.rule}{at}{policy}")
        lines.append(f"    {v.reason}: {v.message}")
        if v.fix:
            lines.append(f"    fix: {v.fix}")
    violation_warnings = {f"{v.rule}: {v.render()}" for v in result.violations}
    for warning in result.warnings:
        if warning not in violation_warnings:
            lines.append(f"  warning: {warning}")
    lines.extend(f"  excepted: {use.render()}" for use in result.validation.exceptions)
    lines.extend(f"  note: {note}" for note in result.info)
    if result.patch:
        lines.append("  would be patched:")
        lines.extend(f"    {line}" for op in result.patch for line in patch_lines(op))
    return lines


def check_text(results: Sequence[ObjectResult], *, warnings_as_errors: bool = False, quiet: bool = False) -> str:
    """One line per governed object, with every finding under it, then the summary.
    ``quiet``: only the objects denied or warned, then the summary."""
    lines: list[str] = []
    for result in results:
        if quiet and verdict(result) == "allow":
            continue
        if governed(result) and result.judged:
            lines.extend(result_text(result))
        elif lookalike(result.object) and not quiet:
            lines.append(f"{where(result)}: {describe(result.object)} ({result.object.get('apiVersion', '')}): "
                         "not governed: not a Gateway API object")
    s = summary(results, warnings_as_errors=warnings_as_errors)
    lines.append(
        f"{s['objects']} object(s): {s['allowed']} allowed, {s['warned']} with warnings, {s['denied']} denied, "
        f"{s['patched']} would be patched, {s['notGoverned']} not governed"
        + (f", {s['unchanged']} unchanged since the baseline (not judged)" if s["unchanged"] else "")
        + (f", {s['skipped']} skipped (in namespaces the webhook excludes)" if s["skipped"] else "")
    )
    if warnings_as_errors and s["warned"]:
        lines.append("warnings count as errors (--warnings-as-errors)")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- JUnit
@dataclass(frozen=True, slots=True)
class Case:
    """One JUnit testcase: passed unless it has a failure, an error or is skipped."""

    name: str
    classname: str
    failure: tuple[str, str, str] | None = None  # (type, message, text)
    error: tuple[str, str, str] | None = None
    skipped: str | None = None
    file: str = ""
    line: int | None = None
    output: str = ""


@dataclass(frozen=True, slots=True)
class Suite:
    name: str
    cases: tuple[Case, ...] = field(default_factory=tuple)


def junit_xml(suites: Iterable[Suite], *, name: str) -> str:
    suites = list(suites)
    root = ET.Element("testsuites", name=name)
    totals = Counter[str]()
    for suite in suites:
        counts = Counter(
            "failures" if c.failure else "errors" if c.error else "skipped" if c.skipped is not None else "passed"
            for c in suite.cases
        )
        element = ET.SubElement(
            root, "testsuite", name=suite.name, tests=str(len(suite.cases)), failures=str(counts["failures"]),
            errors=str(counts["errors"]), skipped=str(counts["skipped"]), time="0",
        )
        for case in suite.cases:
            attrs = {"name": case.name, "classname": case.classname, "time": "0"}
            if case.file:
                attrs["file"] = case.file
            if case.line is not None:
                attrs["line"] = str(case.line)
            tc = ET.SubElement(element, "testcase", attrs)
            for tag, value in (("failure", case.failure), ("error", case.error)):
                if value is not None:
                    kind, message, text = value
                    ET.SubElement(tc, tag, type=kind, message=message).text = text
            if case.skipped is not None:
                ET.SubElement(tc, "skipped", message=case.skipped)
            if case.output:
                ET.SubElement(tc, "system-out").text = case.output
        totals.update({"tests": len(suite.cases), **counts})
    for key in ("tests", "failures", "errors", "skipped"):
        root.set(key, str(totals[key]))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def check_cases(results: Sequence[ObjectResult], *, warnings_as_errors: bool = False) -> list[Suite]:
    """One suite per source file, one testcase per object; denials are failures."""
    by_file: dict[str, list[Case]] = {}
    for result in results:
        source = result.source or "<unknown>"
        name = f"{result.object.get('kind', '')}/{'/'.join(filter(None, _ns_name(result.object)))}"
        detail = "\n".join(result_text(result))
        case = Case(name=name, classname=source, file=source, line=result.line)
        if not governed(result) or not result.judged:
            why = result.skipped or ("not governed by routewarden" if result.judged else "unchanged since the baseline")
            case = Case(name, source, skipped=why, file=source, line=result.line)
        elif failed(result, warnings_as_errors=warnings_as_errors):
            first = result.validation.denials[0] if result.validation.denials else None
            kind = first.rule if first else ("warning" if result.allowed else result.validation.reason or "denied")
            message = result.validation.message if not result.allowed else "; ".join(result.warnings)
            case = Case(name, source, failure=(kind, message, detail), file=source, line=result.line)
        elif result.warnings or result.patch:
            case = Case(name, source, file=source, line=result.line, output=detail)
        by_file.setdefault(source, []).append(case)
    return [Suite(name, tuple(cases)) for name, cases in by_file.items()]


def _ns_name(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


# ----------------------------------------------------------------------------- findings
@dataclass(frozen=True, slots=True)
class Finding:
    """One thing to point at in a file: a violation, an admission warning or an error."""

    result: ObjectResult
    level: Literal["error", "warning", "note"]
    rule: str
    message: str


def findings(results: Sequence[ObjectResult], *, warnings_as_errors: bool = False) -> list[Finding]:
    """Every finding of the judged objects, denials first within each object."""
    out: list[Finding] = []
    levels: dict[Mode, Literal["error", "warning", "note"]] = {
        Mode.ENFORCE: "error", Mode.WARN: "error" if warnings_as_errors else "warning", Mode.AUDIT: "note"}
    for r in results:
        if not r.judged:
            continue
        name = describe(r.object)
        if r.validation.code != 200 and not r.violations:
            out.append(Finding(r, "error", r.validation.reason or "BadRequest", f"{name}: {r.validation.message}"))
        for v in sorted(r.violations, key=lambda v: _SEVERITY[v.mode]):
            out.append(Finding(r, levels[v.mode], v.rule, f"{name}: {v.render()}"))
        said = {f"{v.rule}: {v.render()}" for v in r.violations}
        out.extend(Finding(r, levels[Mode.WARN], "admission/Warning", f"{name}: {w}")
                   for w in r.warnings if w not in said)
    return out


# ----------------------------------------------------------------------------- GitHub
def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_commands(results: Sequence[ObjectResult], *, warnings_as_errors: bool = False) -> str:
    """GitHub Actions workflow commands (``::error file=...,line=...,title=...::message``),
    one per finding, so each shows on the line of the pull request that holds the object;
    then the summary as a plain line."""
    lines = []
    for f in findings(results, warnings_as_errors=warnings_as_errors):
        command = {"error": "error", "warning": "warning", "note": "notice"}[f.level]
        props = []
        if f.result.source and not f.result.source.startswith("<"):
            props.append(f"file={_escape_property(f.result.source)}")
            if f.result.line is not None:
                props.append(f"line={f.result.line}")
        props.append(f"title={_escape_property(f.rule)}")
        lines.append(f"::{command} {','.join(props)}::{_escape_data(f.message)}")
    s = summary(results, warnings_as_errors=warnings_as_errors)
    lines.append(f"routewarden check: {s['objects']} object(s): {s['allowed']} allowed, {s['warned']} with warnings, "
                 f"{s['denied']} denied, {s['failed']} failing the check")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- SARIF
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
INFORMATION_URI = "https://routewarden.dev"


def _artifact(source: str) -> dict[str, Any]:
    path = PurePath(source)
    if path.is_absolute():
        return {"uri": Path(source).as_uri()}
    return {"uri": path.as_posix(), "uriBaseId": "%SRCROOT%"}


def sarif(results: Sequence[ObjectResult]) -> str:
    """A SARIF 2.1.0 log for code scanning: one result per finding, located at the file and
    line of its object (an object read from standard input has only a logical location)."""
    found = findings(results)
    rule_ids = sorted({f.rule for f in found})
    rules = [{"id": rule, "name": rule.rpartition("/")[2],
              "shortDescription": {"text": f"routewarden rule {rule}"},
              "helpUri": f"{INFORMATION_URI}/docs/policy-reference#rules-and-reasons"} for rule in rule_ids]
    out = []
    for f in found:
        item: dict[str, Any] = {
            "ruleId": f.rule, "ruleIndex": rule_ids.index(f.rule), "level": f.level,
            "message": {"text": f.message},
        }
        location: dict[str, Any] = {"logicalLocations": [
            {"fullyQualifiedName": "/".join(filter(None, (str(f.result.object.get("kind") or ""),
                                                          *_ns_name(f.result.object)))), "kind": "resource"}]}
        if f.result.source and not f.result.source.startswith("<"):
            region = {"startLine": f.result.line} if f.result.line is not None else {}
            location["physicalLocation"] = {"artifactLocation": _artifact(f.result.source),
                                            **({"region": region} if region else {})}
        item["locations"] = [location]
        out.append(item)
    log = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": "routewarden", "version": __version__, "informationUri": INFORMATION_URI,
                            "rules": rules}},
        "columnKind": "unicodeCodePoints",
        "results": out,
    }]}
    return json.dumps(log, indent=2) + "\n"
