"""Decisions: the value every rule and the engine produce.

A validating rule yields :class:`Violation` values. The engine folds them into one
:class:`Decision`: denied when any violation is in ``enforce`` mode, admission warnings
for ``warn`` mode, and only logs and metrics for ``audit`` mode. Mutating rules change a
copy of the object; the engine diffs it into a JSON Patch (never hand-written
operations), so an object that is already right gets no patch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any


class Mode(StrEnum):
    """What a violation does: deny, warn the user, or only record it."""

    ENFORCE = "enforce"
    WARN = "warn"
    AUDIT = "audit"

    @property
    def strictness(self) -> int:
        """audit < warn < enforce."""
        return ("audit", "warn", "enforce").index(self.value)


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule, with everything a user needs to fix it.

    ``rule`` is ``area/Reason`` (for example ``attachment/NotAllowedByListeners``);
    ``reason`` reuses the Gateway API's own condition reason where one exists.
    ``field`` is the path of the offending field (``spec.parentRefs[0]``).
    ``subject`` is what the finding is about, named without list positions: a parentRef's
    target (``Gateway infra/shared sectionName http``), a hostname, a reference's target,
    a listener's name. With ``rule`` it is the finding's :attr:`identity`.
    """

    rule: str
    reason: str
    message: str
    field: str = ""
    fix: str = ""
    mode: Mode = Mode.ENFORCE
    policy: str = ""
    subject: str = ""

    @property
    def identity(self) -> tuple[str, str]:
        """The same finding in another version of the object: same rule, same subject.

        Positions are no part of it: a route whose parentRefs are reordered, or that
        gains a hostname in front of the others, keeps the identities of its findings.
        A finding without a subject is identified by its field (one that is not a list
        item, such as ``spec.hostnames`` or ``spec.gatewayClassName``).
        """
        return (self.rule, self.subject or self.field)

    def softened(self, why: str) -> Violation:
        """This finding as a warning, saying why it does not deny."""
        return replace(self, mode=Mode.WARN, message=f"{self.message} ({why})")

    def render(self) -> str:
        """One line for a human: reason, message, field and how to fix it."""
        text = f"{self.reason}: {self.message}"
        if self.field:
            text += f" (at {self.field})"
        if self.fix:
            text += f". Fix: {self.fix}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "reason": self.reason,
            "message": self.message,
            "field": self.field,
            "fix": self.fix,
            "mode": self.mode.value,
            "policy": self.policy,
        }


@dataclass(frozen=True, slots=True)
class ExceptionUse:
    """A finding a ``TenancyException`` excepted: which exception, which rule, and why."""

    exception: str
    rule: str
    policy: str = ""
    field: str = ""
    reason: str = ""
    expires: str = ""

    def render(self) -> str:
        at = f" at {self.field}" if self.field else ""
        until = f", until {self.expires}" if self.expires else ""
        return f"{self.rule}{at} by TenancyException {self.exception} ({self.reason}{until})"

    def to_dict(self) -> dict[str, Any]:
        return {"exception": self.exception, "rule": self.rule, "policy": self.policy, "field": self.field,
                "reason": self.reason, "expires": self.expires or None}


@dataclass(frozen=True, slots=True)
class Decision:
    """The engine's answer for one admission request."""

    allowed: bool
    violations: tuple[Violation, ...] = ()
    warnings: tuple[str, ...] = ()
    patch: tuple[dict[str, Any], ...] = ()
    # Set when the request could not be evaluated at all (an object whose fields have
    # the wrong types): HTTP-level the review is fine, the object is not.
    code: int = 200
    reason: str = ""
    message: str = ""
    # Findings a TenancyException excepted (not in ``violations``): counted and logged.
    exceptions: tuple[ExceptionUse, ...] = ()

    @property
    def denials(self) -> tuple[Violation, ...]:
        return tuple(v for v in self.violations if v.mode is Mode.ENFORCE)

    @property
    def rules(self) -> tuple[str, ...]:
        """The distinct rule ids that fired, in order."""
        return tuple(dict.fromkeys(v.rule for v in self.violations))


def allowed(*, warnings: tuple[str, ...] = (), patch: tuple[dict[str, Any], ...] = ()) -> Decision:
    return Decision(allowed=True, warnings=warnings, patch=patch)


def invalid(message: str, *, warnings: tuple[str, ...] = ()) -> Decision:
    """The object cannot be evaluated: its fields are not of the types the API defines."""
    return Decision(allowed=False, code=400, reason="BadRequest", message=message, warnings=warnings)


def from_violations(
    violations: tuple[Violation, ...] | list[Violation],
    *,
    warnings: tuple[str, ...] = (),
    patch: tuple[dict[str, Any], ...] = (),
) -> Decision:
    """Fold violations into a decision by their modes."""
    violations = tuple(violations)
    denials = [v for v in violations if v.mode is Mode.ENFORCE]
    warned = tuple(f"{v.rule}: {v.render()}" for v in violations if v.mode is Mode.WARN)
    all_warnings = tuple(warnings) + warned
    if not denials:
        return Decision(allowed=True, violations=violations, warnings=all_warnings, patch=patch)
    if len(denials) == 1:
        message = denials[0].render()
    else:
        message = f"{len(denials)} problems: " + "; ".join(
            f"({i}) {v.render()}" for i, v in enumerate(denials, 1)
        )
    return Decision(
        allowed=False,
        violations=violations,
        warnings=all_warnings,
        code=403,
        reason=denials[0].reason,
        message=message,
    )
