"""Kubernetes label selectors (``metav1.LabelSelector``), with apimachinery's validation and semantics."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .core import MalformedObject, _list, _map, _opt_str, _str_map

# Label syntax as apimachinery validates it (validation.IsQualifiedName / IsValidLabelValue):
# ``metav1.LabelSelectorAsSelector`` refuses a selector with a bad key or value, so such a
# selector never selects anything and is reported as malformed rather than evaluated.
_LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def _check_label_key(key: str, where: str) -> None:
    prefix, _, name = key.rpartition("/")
    if "/" in prefix or (key.count("/") == 1 and not (len(prefix) <= 253 and _DNS1123_SUBDOMAIN.fullmatch(prefix))):
        raise MalformedObject(where, f"invalid label key {key!r}: bad prefix")
    if not (len(name) <= 63 and _LABEL_NAME.fullmatch(name)):
        raise MalformedObject(where, f"invalid label key {key!r}")


def _check_label_value(value: str, where: str) -> None:
    if value and not (len(value) <= 63 and _LABEL_NAME.fullmatch(value)):
        raise MalformedObject(where, f"invalid label value {value!r}")


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """``metav1.LabelSelector`` with Kubernetes semantics (requirements are ANDed)."""

    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[tuple[str, str, frozenset[str]], ...] = ()

    @classmethod
    def from_dict(cls, value: Any, where: str = "selector") -> LabelSelector:
        m = _map(value, where)
        labels = _str_map(m.get("matchLabels"), f"{where}.matchLabels")
        for k, v in labels.items():
            _check_label_key(k, f"{where}.matchLabels")
            _check_label_value(v, f"{where}.matchLabels.{k}")
        exprs = []
        for i, e in enumerate(_list(m.get("matchExpressions"), f"{where}.matchExpressions")):
            at = f"{where}.matchExpressions[{i}]"
            e = _map(e, at)
            key = _opt_str(e.get("key"), f"{at}.key") or ""
            op = _opt_str(e.get("operator"), f"{at}.operator") or ""
            values = _list(e.get("values"), f"{at}.values")
            if not all(isinstance(v, str) for v in values):
                raise MalformedObject(f"{at}.values", "expected a list of strings")
            if op in ("In", "NotIn") and not values:
                raise MalformedObject(f"{at}.values", f"operator {op} needs at least one value")
            if op in ("Exists", "DoesNotExist") and values:
                raise MalformedObject(f"{at}.values", f"operator {op} takes no values")
            if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
                raise MalformedObject(f"{at}.operator", f"unknown operator {op!r}")
            _check_label_key(key, f"{at}.key")
            for v in values:
                _check_label_value(v, f"{at}.values")
            exprs.append((key, op, frozenset(values)))
        return cls(tuple(sorted(labels.items())), tuple(exprs))

    def matches(self, labels: Mapping[str, str]) -> bool:
        for key, value in self.match_labels:
            if labels.get(key) != value:
                return False
        for key, op, values in self.match_expressions:
            present = key in labels
            if op == "In" and not (present and labels[key] in values):
                return False
            if op == "NotIn" and present and labels[key] in values:
                return False
            if op == "Exists" and not present:
                return False
            if op == "DoesNotExist" and present:
                return False
        return True

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(k for k, _ in self.match_labels) | frozenset(k for k, _, _ in self.match_expressions)

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in self.match_labels]
        for key, op, values in self.match_expressions:
            if op in ("In", "NotIn"):
                parts.append(f"{key} {op.lower()} ({','.join(sorted(values))})")
            elif op == "Exists":
                parts.append(key)
            else:
                parts.append(f"!{key}")
        return ",".join(parts) or "<everything>"
