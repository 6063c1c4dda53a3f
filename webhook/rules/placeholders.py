"""What the rules need for namespace placeholders in patterns (see policy/placeholders.py)."""

from __future__ import annotations

from ..policy.placeholders import NamespaceFacts
from ..state.store import ClusterState
from .context import RuleContext


def namespace_facts(ctx: RuleContext, namespace: str) -> NamespaceFacts:
    """The name, labels and annotations placeholders read (labels as the view gives them)."""
    return facts_of(ctx.state, namespace)


def facts_of(state: ClusterState, namespace: str) -> NamespaceFacts:
    """:func:`namespace_facts` from the view itself (``explain`` has no rule context)."""
    record = state.namespace(namespace)
    if record is None:  # not known, or a Namespace the view cannot read (kept as it came)
        return NamespaceFacts.of(namespace, state.get("Namespace", "", namespace))
    return NamespaceFacts(namespace, record.labels, record.annotations)
