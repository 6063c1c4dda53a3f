"""``TenancyException``: named rules switched off for named objects, with a reason.

A TenancyPolicy's ``exempt`` switches every rule off for a namespace or a requester. An
exception is narrower, like Kyverno's PolicyException: it lists rule ids and what it
covers (kinds, namespaces, object names, object labels; every criterion given must
hold), optionally which TenancyPolicies' findings, until when, and why. The platform's
catch-all HTTP to HTTPS redirect route can so be excepted from
``hostnames/HostnameRequired`` while every other rule keeps applying to its namespace.

:func:`apply_exceptions` is the one place the engine consults them: it takes the
violations of a request and returns those no exception covers, and a record of each
exception used (counted in a metric, logged, shown by ``check``). An expired exception
covers nothing and says so. Pure: the time is an argument.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..admission import AdmissionRequest
from ..decision import ExceptionUse, Violation
from ..gatewayapi import LabelSelector
from .model import NamespaceSet


def parse_expiry(value: str) -> datetime:
    """``2026-12-31`` (valid through that day, UTC) or an RFC 3339 time."""
    if len(value) == 10:
        return datetime.fromisoformat(value).replace(tzinfo=UTC) + timedelta(days=1)
    return datetime.fromisoformat(value)  # Python 3.11 reads a trailing Z


@dataclass(frozen=True, slots=True)
class TenancyException:
    name: str
    rules: frozenset[str]
    reason: str
    source: str = ""
    policies: frozenset[str] = frozenset()  # empty: the findings of every TenancyPolicy
    kinds: frozenset[str] = frozenset()
    namespaces: NamespaceSet | None = None
    names: frozenset[str] = frozenset()
    selector: LabelSelector | None = None
    expires: datetime | None = None
    expires_text: str = ""

    @classmethod
    def from_document(cls, doc: Mapping[str, Any], *, source: str = "") -> TenancyException:
        spec = doc.get("spec") or {}
        match = spec.get("match") or {}
        selector = match.get("selector")
        expires = spec.get("expires")
        return cls(
            name=(doc.get("metadata") or {}).get("name", ""),
            rules=frozenset(spec["rules"]),
            reason=spec["reason"],
            source=source,
            policies=frozenset(spec.get("policies") or ()),
            kinds=frozenset(match.get("kinds") or ()),
            namespaces=NamespaceSet.from_dict(match.get("namespaces")),
            names=frozenset(match.get("names") or ()),
            selector=LabelSelector.from_dict(selector, "spec.match.selector") if selector is not None else None,
            expires=parse_expiry(expires) if expires else None,
            expires_text=expires or "",
        )

    def expired(self, now: datetime) -> bool:
        return self.expires is not None and now >= self.expires

    def matches(self, *, kind: str, namespace: str, name: str, labels: Mapping[str, str],
                namespace_labels: Mapping[str, str] | None) -> bool:
        """Whether the object is covered (every criterion given holds). A namespace
        selector needs the namespace's labels: unknown labels cover nothing."""
        if self.kinds and kind not in self.kinds:
            return False
        if self.names and name not in self.names:
            return False
        if self.namespaces is not None and not self.namespaces.contains(namespace, namespace_labels):
            return False
        return self.selector is None or self.selector.matches(labels)

    def covers(self, violation: Violation) -> bool:
        return violation.rule in self.rules and (not self.policies or violation.policy in self.policies)

    def describe(self) -> str:
        until = f", until {self.expires_text}" if self.expires_text else ""
        return f"TenancyException {self.name} ({self.reason}{until})"


def _subject(request: AdmissionRequest) -> Mapping[str, Any]:
    return request.object if request.object is not None else (request.old_object or {})


def applicable(exceptions: Iterable[TenancyException], request: AdmissionRequest,
               namespace_labels: Mapping[str, str] | None) -> list[TenancyException]:
    """The exceptions whose ``match`` covers the request's object."""
    meta = _subject(request).get("metadata")
    labels = (meta.get("labels") if isinstance(meta, Mapping) else None) or {}
    labels = labels if isinstance(labels, Mapping) else {}
    return [e for e in exceptions if e.matches(kind=request.kind.kind, namespace=request.namespace,
                                               name=request.name, labels=labels, namespace_labels=namespace_labels)]


def apply_exceptions(
    violations: list[Violation],
    exceptions: Iterable[TenancyException],
    request: AdmissionRequest,
    namespace_labels: Mapping[str, str] | None,
    *,
    now: datetime,
) -> tuple[list[Violation], tuple[ExceptionUse, ...], tuple[str, ...]]:
    """(violations no exception covers, the exceptions used, notes on expired ones)."""
    if not violations:
        return violations, (), ()
    matching = applicable(exceptions, request, namespace_labels)
    if not matching:
        return violations, (), ()
    kept: list[Violation] = []
    used: list[ExceptionUse] = []
    notes: list[str] = []
    for v in violations:
        covering = [e for e in matching if e.covers(v)]
        live = [e for e in covering if not e.expired(now)]
        if live:
            e = live[0]
            used.append(ExceptionUse(e.name, v.rule, v.policy, v.field, e.reason, e.expires_text))
            continue
        kept.append(v)
        notes.extend(f"TenancyException {e.name} expired on {e.expires_text}: it no longer excepts {v.rule}"
                     for e in covering)
    return kept, tuple(used), tuple(dict.fromkeys(notes))
