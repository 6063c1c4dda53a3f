"""What the rules need for namespace placeholders in patterns (see policy/placeholders.py)."""

from __future__ import annotations

from ..policy.placeholders import NamespaceFacts
from .context import RuleContext


def namespace_facts(ctx: RuleContext, namespace: str) -> NamespaceFacts:
    """The name, labels and annotations placeholders read (labels as the view gives them)."""
    return NamespaceFacts.of(namespace, ctx.state.get("Namespace", "", namespace))

