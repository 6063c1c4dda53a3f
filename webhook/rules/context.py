"""What a rule sees: the request, one policy, and the cluster view. Read-only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..admission import AdmissionRequest
from ..decision import Violation
from ..gatewayapi import Attachment, Gateway, Listener, ParentRef, Route, evaluate_attachment
from ..policy.model import TenancyPolicy
from ..state.store import ClusterState


@dataclass(frozen=True, slots=True)
class RuleContext:
    request: AdmissionRequest
    policy: TenancyPolicy
    state: ClusterState
    # Shared by the contexts of one request: what every policy would compute alike.
    memo: dict[Any, Any] = field(default_factory=dict, compare=False)

    def violation(self, rule: str, message: str, *, field: str = "", fix: str = "", reason: str | None = None) -> Violation:
        """A violation of ``rule`` (``area/Reason``) in the mode this policy gives it."""
        return Violation(
            rule=rule,
            reason=reason or rule.rpartition("/")[2],
            message=message,
            field=field,
            fix=fix,
            mode=self.policy.mode_for(rule),
            policy=self.policy.name,
        )

    def attachment(
        self, route: Route, ref: ParentRef, listeners: tuple[Listener, ...], *, owner_namespace: str
    ) -> Attachment:
        """:func:`evaluate_attachment` of one parentRef, computed once per request: it
        depends on the route and the cluster view, not on the policy asking."""
        key = ("attachment", id(route), id(ref), owner_namespace)
        found = self.memo.get(key)
        if found is None:
            found = self.memo[key] = evaluate_attachment(
                route, ref, listeners, owner_namespace=owner_namespace, namespace_labels=self.labels(route.namespace)
            )
        return found

    def labels(self, namespace: str) -> Mapping[str, str] | None:
        """A namespace's labels, or None when the view does not hold the namespace."""
        return self.state.namespace_labels(namespace)

    def governs(self, gateway: Gateway) -> bool:
        """Whether the policy's ``match`` selects the Gateway (asked by most rules, answered once)."""
        key = ("governs", id(self.policy), id(gateway))
        found = self.memo.get(key)
        if found is None:
            found = self.memo[key] = self.policy.match.matches(
                namespace=gateway.namespace,
                name=gateway.name,
                class_name=gateway.class_name,
                namespace_labels=self.state.namespace_labels(gateway.namespace),
            )
        return found

    def may_govern(self, ref: ParentRef) -> bool:
        """For a Gateway the view does not hold: could this policy govern it?"""
        match = self.policy.match
        if match.everything or (ref.namespace, ref.name) in match.gateways or (None, ref.name) in match.gateways:
            return True
        if match.namespaces is not None:
            return match.namespaces.contains(ref.namespace, self.state.namespace_labels(ref.namespace)) is not False
        return bool(match.class_names)  # the class is unknown until the Gateway exists
