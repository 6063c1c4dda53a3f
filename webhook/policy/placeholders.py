"""Hostname patterns derived from the namespace: ``*.{namespace}.example.com``.

``hostnames.allowed[].patterns`` and ``gatewayGuardrails.listenerDomains`` may hold
placeholders that take their value from the namespace of the route (or of the
listener's Gateway):

* ``{namespace}``: its name;
* ``{labels.KEY}``: the value of its label ``KEY`` (``{labels.team}``);
* ``{annotations.KEY}``: the value of its annotation ``KEY``.

A placeholder is resolved per request and never guessed: a label or annotation the
namespace does not have, or a value that is not a DNS name, leaves the pattern matching
nothing, and the answer says why. When the view does not hold the Namespace at all, the
labels are *unknown*: the caller warns instead of denying (DESIGN rule 4).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..gatewayapi import hostname_matches

PLACEHOLDER = re.compile(r"\{(namespace|labels\.[^{}\s]+|annotations\.[^{}\s]+)\}")
_HOSTNAME = re.compile(r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def has_placeholders(pattern: str) -> bool:
    return "{" in pattern and PLACEHOLDER.search(pattern) is not None


def normalize_pattern(pattern: str) -> str:
    """Lower-case a pattern outside its placeholders (label and annotation keys keep their case)."""
    pattern = pattern.strip().rstrip(".")
    out, last = [], 0
    for m in PLACEHOLDER.finditer(pattern):
        out += [pattern[last:m.start()].lower(), m.group(0)]
        last = m.end()
    return "".join(out) + pattern[last:].lower()


def is_valid_pattern(pattern: str) -> bool:
    """A hostname or ``*.`` wildcard once every placeholder stands for a DNS label."""
    return _HOSTNAME.match(PLACEHOLDER.sub("x", normalize_pattern(pattern))) is not None


@dataclass(frozen=True, slots=True)
class NamespaceFacts:
    """What placeholders read: a namespace's name, and its labels and annotations
    (None when the view does not hold the Namespace)."""

    name: str
    labels: Mapping[str, str] | None
    annotations: Mapping[str, str] | None

    @classmethod
    def of(cls, name: str, namespace: Mapping[str, Any] | None) -> NamespaceFacts:
        if namespace is None:
            return cls(name, None, None)
        meta = namespace.get("metadata") or {}
        labels = {**(meta.get("labels") or {}), "kubernetes.io/metadata.name": name}
        return cls(name, labels, dict(meta.get("annotations") or {}))


@dataclass(frozen=True, slots=True)
class Resolved:
    """One pattern for one namespace: the hostname pattern, or why there is none."""

    template: str
    pattern: str | None
    problem: str = ""
    unknown: bool = False  # the Namespace is not in the view, so its labels are unknown

    def permits(self, hostname: str) -> bool:
        return self.pattern is not None and hostname_matches(self.pattern, hostname)

    def describe(self) -> str:
        if self.pattern is None:
            return f"{self.template} (matches nothing: {self.problem})"
        return self.pattern if self.pattern == self.template else f"{self.pattern} (from {self.template})"


def resolve(template: str, facts: NamespaceFacts) -> Resolved:
    """``template`` with the placeholders of ``facts``' namespace filled in."""
    if not has_placeholders(template):
        return Resolved(template, template)
    problems: list[str] = []
    unknown = False

    def value(m: re.Match[str]) -> str:
        nonlocal unknown
        name = m.group(1)
        if name == "namespace":
            return facts.name
        source, _, key = name.partition(".")
        values = facts.labels if source == "labels" else facts.annotations
        if values is None:
            unknown = True
            problems.append(f"namespace {facts.name} is not in the cluster view, so its {source} are unknown")
            return "x"
        if key not in values:
            problems.append(f"namespace {facts.name} has no {source[:-1]} {key}")
            return "x"
        if not _HOSTNAME.match(values[key].lower()) or values[key].startswith("*"):
            problems.append(f"{source[:-1]} {key} of namespace {facts.name} is {values[key]!r}, not a DNS name")
            return "x"
        return values[key].lower()

    pattern = PLACEHOLDER.sub(value, template)
    if problems:
        return Resolved(template, None, "; ".join(dict.fromkeys(problems)), unknown)
    return Resolved(template, pattern) if _HOSTNAME.match(pattern) else Resolved(
        template, None, f"{pattern} is not a hostname")


def resolve_all(templates: Iterable[str], facts: NamespaceFacts) -> list[Resolved]:
    return [resolve(t, facts) for t in dict.fromkeys(templates)]


def describe_all(resolved: Iterable[Resolved]) -> str:
    return ", ".join(sorted(r.describe() for r in resolved))
