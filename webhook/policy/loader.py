"""Load policy documents from a directory, check them, and hot-reload them.

Every document is checked against the JSON Schema of its kind (published in
``webhook/policy/schemas/``), then against the rules a schema cannot express (unique
names, known rule ids, valid selectors). Errors name the file, the document (0-based
index within the file) and the field. A set with any error is refused as a whole and the
last good set keeps serving: half a policy set is worse than the previous one.

Only the files directly in the directory are read (``*.yaml``, ``*.yml``, ``*.json``),
as a mounted ConfigMap is flat; sub-folders such as ``examples/`` are not loaded.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from ..decision import Mode
from ..gatewayapi import MalformedObject
from ..logs import fields
from .exceptions import TenancyException, parse_expiry
from .model import RULES, PolicySet, TenancyPolicy
from .placeholders import is_valid_pattern

log = logging.getLogger("routewarden.policy")

API_VERSION = "routewarden.dev/v1alpha1"
SCHEMA_DIR = Path(__file__).with_name("schemas")
# kind -> schema file name; the parser for each kind is looked up in _parsers().
SCHEMAS: Mapping[str, str] = {
    "TenancyPolicy": "tenancypolicy.json",
    "ServicePolicy": "servicepolicy.json",
    "TenancyException": "tenancyexception.json",
}
IGNORED_FILES = frozenset({"kustomization.yaml", "kustomization.yml"})


@dataclass(frozen=True, slots=True)
class PolicyError:
    """One problem in one document, with where it is."""

    file: str
    message: str
    document: int | None = None
    field: str = ""

    def __str__(self) -> str:
        where = self.file
        if self.document is not None:
            where += f" (document {self.document})"
        if self.field:
            where += f" at {self.field}"
        return f"{where}: {self.message}"


class PolicyLoadError(Exception):
    def __init__(self, errors: list[PolicyError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors


@cache
def validator(kind: str) -> Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / SCHEMAS[kind]).read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_for(kind: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / SCHEMAS[kind]).read_text())


def _field_path(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _parsers() -> Mapping[str, Callable[..., Any]]:
    from ..mutation.policy import ServicePolicy  # the mutation package owns its policy kind

    return {"TenancyPolicy": TenancyPolicy.from_document, "ServicePolicy": ServicePolicy.from_document,
            "TenancyException": TenancyException.from_document}


def policy_files(directory: Path) -> list[Path]:
    return sorted(
        p
        for p in directory.iterdir()
        if p.suffix in (".yaml", ".yml", ".json") and p.name not in IGNORED_FILES and not p.name.startswith(".")
        and p.is_file()
    )


def read_documents(path: Path, text: str | None = None) -> tuple[list[tuple[int, Any]], list[PolicyError]]:
    """The non-empty YAML documents of one file, with their index; YAML errors with their line."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8") if text is None else text
        return [(i, d) for i, d in enumerate(yaml.safe_load_all(text)) if d is not None], []
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        return [], [PolicyError(name, f"invalid YAML at {where}: {exc.problem}")]
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return [], [PolicyError(name, f"cannot read: {exc}")]


def _schema_message(error: Any) -> str:
    """jsonschema's message; a pattern mismatch also says what the pattern stands for."""
    description = error.schema.get("description") if isinstance(error.schema, dict) else None
    if error.validator == "pattern" and description:
        return f"{error.instance!r} is not {description}"
    return error.message


def check_document(doc: Any, *, file: str, index: int) -> list[PolicyError]:
    """Schema and semantic errors of one document."""
    if not isinstance(doc, dict):
        return [PolicyError(file, "a policy document must be a mapping", index)]
    kind = doc.get("kind")
    if doc.get("apiVersion") != API_VERSION:
        return [PolicyError(file, f"apiVersion must be {API_VERSION}, not {doc.get('apiVersion')!r}", index, "apiVersion")]
    if not isinstance(kind, str) or kind not in SCHEMAS:  # a list or mapping is unhashable
        return [PolicyError(file, f"unknown kind {kind!r}; expected one of {sorted(SCHEMAS)}", index, "kind")]
    errors = [
        PolicyError(file, _schema_message(e), index, _field_path(e.absolute_path) or "<document>")
        for e in sorted(validator(kind).iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    ]
    if errors or kind == "ServicePolicy":
        return errors
    spec = doc.get("spec") or {}
    if kind == "TenancyException":
        errors.extend(PolicyError(file, f"unknown rule id {rule!r}; known: {', '.join(sorted(RULES))}", index,
                                  f"spec.rules[{i}]")
                      for i, rule in enumerate(spec["rules"]) if rule not in RULES)
        if spec.get("expires"):
            try:
                parse_expiry(spec["expires"])
            except ValueError as exc:
                errors.append(PolicyError(file, f"not a date or time: {exc}", index, "spec.expires"))
        return errors
    for rule in spec.get("rules") or {}:
        if rule not in RULES:
            errors.append(PolicyError(file, f"unknown rule id {rule!r}; known: {', '.join(sorted(RULES))}", index, f"spec.rules.{rule}"))
    for i, allowance in enumerate((spec.get("hostnames") or {}).get("allowed") or ()):
        for j, pattern in enumerate(allowance.get("patterns") or ()):
            if not is_valid_pattern(pattern):
                errors.append(
                    PolicyError(file, f"{pattern!r} is not a hostname or *.wildcard", index, f"spec.hostnames.allowed[{i}].patterns[{j}]")
                )
    for i, domain in enumerate((spec.get("gatewayGuardrails") or {}).get("listenerDomains") or ()):
        if not is_valid_pattern(domain):
            errors.append(PolicyError(file, f"{domain!r} is not a hostname or *.wildcard", index,
                                      f"spec.gatewayGuardrails.listenerDomains[{i}]"))
    return errors


def deny_everything_warnings(policy: TenancyPolicy) -> list[str]:
    """Settings that would refuse every object they govern: flagged at load, not silent."""
    out = []
    where = f"{policy.source}: TenancyPolicy {policy.name}"
    allowed = policy.allowed_namespaces
    if allowed is not None and allowed.empty and policy.mode_for("attachment/NotAllowedByPolicy") == Mode.ENFORCE:
        out.append(f"{where}: attachment.allowedNamespaces selects no namespace: every route from another "
                   "namespace than its Gateway's will be denied")
    if policy.has_class_rules and not policy.allowed_classes and policy.mode_for("gateway/GatewayClassNotAllowed") == Mode.ENFORCE:
        out.append(f"{where}: gatewayGuardrails.allowedClasses is empty: every Gateway will be denied")
    if policy.hostnames_allowed and all(a.namespaces.empty for a in policy.hostnames_allowed):
        out.append(f"{where}: no hostnames.allowed entry selects a namespace: every route hostname will be denied")
    return out


def load_documents(entries: Iterable[tuple[str, str | None]]) -> PolicySet:
    """Build a PolicySet from (file name, text) pairs; raise PolicyLoadError listing every problem."""
    errors: list[PolicyError] = []
    tenancy: list[TenancyPolicy] = []
    services: list[Any] = []
    exceptions: list[TenancyException] = []
    sources: list[str] = []
    seen: dict[tuple[str, str], str] = {}
    parsers = _parsers()
    for name, text in entries:
        docs, read_errors = read_documents(Path(name), text)
        errors.extend(read_errors)
        sources.append(name)
        for index, doc in docs:
            doc_errors = check_document(doc, file=name, index=index)
            if doc_errors:
                errors.extend(doc_errors)
                continue
            key = (doc["kind"], doc["metadata"]["name"])
            if key in seen:
                errors.append(PolicyError(name, f"{key[0]} {key[1]!r} is also defined in {seen[key]}", index, "metadata.name"))
                continue
            seen[key] = f"{name} (document {index})"
            try:
                policy = parsers[doc["kind"]](doc, source=f"{name}#{index}")
            except (MalformedObject, ValueError, KeyError, TypeError) as exc:
                errors.append(PolicyError(name, str(exc), index, getattr(exc, "field", "")))
                continue
            by_kind = {"TenancyPolicy": tenancy, "ServicePolicy": services, "TenancyException": exceptions}
            by_kind[doc["kind"]].append(policy)
    if errors:
        raise PolicyLoadError(errors)
    warnings = [w for p in tenancy for w in deny_everything_warnings(p)]
    warnings += exception_warnings(exceptions, {p.name for p in tenancy})
    return PolicySet(tenancy=tuple(tenancy), services=tuple(services), exceptions=tuple(exceptions),
                     sources=tuple(sources), warnings=tuple(warnings))


def exception_warnings(exceptions: Iterable[TenancyException], policy_names: set[str],
                       now: datetime | None = None) -> list[str]:
    """Exceptions that do less, or more, than they seem to: flagged at load."""
    now = now or datetime.now(UTC)
    out = []
    for e in exceptions:
        where = f"{e.source}: TenancyException {e.name}"
        if e.expired(now):
            out.append(f"{where}: expired on {e.expires_text}; it covers nothing")
        for name in sorted(e.policies - policy_names):
            out.append(f"{where}: names TenancyPolicy {name!r}, which is not loaded")
        if e.selector is not None and e.namespaces is None:
            out.append(f"{where}: selects objects by their labels in every namespace; anyone who may write a "
                       "route can label it, so also restrict match.namespaces")
    return out


def load_paths(paths: Iterable[Path]) -> PolicySet:
    """Load policy files and directories (the files directly inside each directory)."""
    files: list[Path] = []
    for path in paths:
        files.extend(policy_files(path) if path.is_dir() else [path])
    return load_documents((str(p), None) for p in files)


def fingerprint(directory: Path) -> str:
    """A digest of every policy file's name and content (ConfigMaps change by symlink swap)."""
    digest = hashlib.sha256()
    try:
        for path in policy_files(directory):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    except OSError as exc:
        digest.update(repr(exc).encode())
    return digest.hexdigest()


class PolicyStore:
    """The policy set in force, swapped whole on a good reload and kept on a bad one."""

    def __init__(
        self,
        directory: str | Path | None = None,
        *,
        initial: PolicySet | None = None,
        on_reload: Callable[[bool], None] | None = None,
    ) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.current = initial or PolicySet()
        self.loaded = directory is None or initial is not None
        self.errors: list[PolicyError] = []
        self.on_reload = on_reload
        self._fingerprint = ""

    def reload(self) -> bool:
        """Re-read the directory. On error keep serving the last good set and return False."""
        if self.directory is None:
            return True
        self._fingerprint = fingerprint(self.directory)
        try:
            if not self.directory.is_dir():
                raise PolicyLoadError([PolicyError(str(self.directory), "is not a directory")])
            policies = load_paths([self.directory])
        except PolicyLoadError as exc:
            self.errors = exc.errors
            for error in exc.errors:
                log.error("policy rejected", extra=fields(error=str(error)))
            log.error(
                "policy reload failed; %s", "keeping the last good policy set" if self.loaded else "no policy set loaded yet"
            )
            if self.on_reload:
                self.on_reload(False)
            return False
        self.current = policies
        self.loaded = True
        self.errors = []
        for warning in policies.warnings:
            log.warning("policy warning: %s", warning)
        log.info(
            "policies loaded",
            extra=fields(tenancy=[p.name for p in policies.tenancy], services=[p.name for p in policies.services],
                         exceptions=[e.name for e in policies.exceptions]),
        )
        if self.on_reload:
            self.on_reload(True)
        return True

    def changed(self) -> bool:
        return self.directory is not None and fingerprint(self.directory) != self._fingerprint

    async def watch(self, interval: float = 5.0) -> None:
        """Poll the directory and reload when its content changes (runs until cancelled)."""
        while True:
            await asyncio.sleep(interval)
            if self.changed():
                self.reload()
