"""What the rules need for namespace placeholders in patterns (see policy/placeholders.py)."""

from __future__ import annotations

from ..decision import Violation
from ..policy.placeholders import NamespaceFacts
from .context import RuleContext


def namespace_facts(ctx: RuleContext, namespace: str) -> NamespaceFacts:
    """The name, labels and annotations placeholders read (labels as the view gives them)."""
    return NamespaceFacts.of(namespace, ctx.state.get("Namespace", "", namespace))


def unknown_namespace(ctx: RuleContext, namespace: str, what: str, *, field: str) -> Violation:
    """A pattern needs labels of a namespace the view does not hold: unknown, so a warning."""
    return ctx.violation(
        "attachment/NamespaceNotFound",
        f"whether {what} is allowed depends on the labels or annotations of namespace {namespace}, which "
        f"{ctx.state.missing}, so a policy pattern with a placeholder cannot be resolved",
        field=field,
        fix=f"declare Namespace {namespace} with its labels alongside the object (offline, or use --cluster)",
    )
