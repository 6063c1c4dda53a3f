"""What a rule sees: the request, one policy, and the cluster view. Read-only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..admission import AdmissionRequest
from ..decision import Mode, Violation
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

    def violation(
        self,
        rule: str,
        message: str,
        *,
        field: str = "",
        fix: str = "",
        subject: str = "",
        reason: str | None = None,
        at_most: Mode | None = None,
    ) -> Violation:
        """A violation of ``rule`` (``area/Reason``) in the mode this policy gives it
        (never stricter than ``at_most``). ``subject`` names what it is about without list
        positions (see :attr:`Violation.identity`)."""
        mode = self.policy.mode_for(rule)
        if at_most is not None and mode.strictness > at_most.strictness:
            mode = at_most
        return Violation(
            rule=rule,
            reason=reason or rule.rpartition("/")[2],
            message=message,
            field=field,
            fix=fix,
            mode=mode,
            policy=self.policy.name,
            subject=subject,
        )

    def namespace_unknown(self, namespace: str, undecided: str, *, field: str = "", subject: str = "") -> Violation:
        """``attachment/NamespaceNotFound``: ``undecided`` needs the labels of ``namespace``,
        which the view does not hold. Offline, the Namespace is missing from the manifests;
        online, it is not in the cluster (yet: GitOps may apply it in the same sync)."""
        if self.state.offline:
            fix = f"pass the Namespace {namespace} manifest with its labels, or use --cluster"
        else:
            fix = f"create Namespace {namespace} with its labels before what is in it (an earlier sync wave)"
        return self.violation(
            "attachment/NamespaceNotFound",
            f"Namespace {namespace} {self.state.missing}, so {undecided} cannot be decided: it depends on its labels",
            field=field,
            fix=fix,
            subject=subject or f"Namespace {namespace}",
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
        """Whether the policy's ``match`` is known to select the Gateway (asked by most rules)."""
        found = self.memo.get(("governs", id(self.policy), id(gateway)), _UNASKED)
        return (self.governance(gateway) if found is _UNASKED else found) is True

    def governance(self, gateway: Gateway) -> bool | None:
        """Whether the policy's ``match`` selects the Gateway; None when only the unknown
        labels of its namespace could tell (answered once per request)."""
        key = ("governs", id(self.policy), id(gateway))
        found = self.memo.get(key, _UNASKED)
        if found is _UNASKED:
            found = self.memo[key] = self.policy.match.matches(
                namespace=gateway.namespace,
                name=gateway.name,
                class_name=gateway.class_name,
                namespace_labels=self.state.namespace_labels(gateway.namespace),
            )
        return found

    def governance_unknown(self, gateway: Gateway) -> Violation:
        """The warning for a Gateway whose governance :meth:`governance` cannot decide."""
        return self.namespace_unknown(
            gateway.namespace,
            f"whether TenancyPolicy {self.policy.name} governs {gateway.describe()} "
            f"(match.namespaces: {self.policy.match.namespaces.describe() if self.policy.match.namespaces else ''})",
            subject=f"{gateway.describe()} governed",
        )

    def may_govern(self, ref: ParentRef) -> bool:
        """For a Gateway the view does not hold: could this policy govern it? A parent that
        is not a Gateway or ListenerSet (a Service, for GAMMA mesh routes) never is one."""
        if not (ref.is_gateway or ref.is_listenerset):
            return False
        match = self.policy.match
        if match.everything or (ref.namespace, ref.name) in match.gateways or (None, ref.name) in match.gateways:
            return True
        if match.namespaces is not None:
            return match.namespaces.contains(ref.namespace, self.state.namespace_labels(ref.namespace)) is not False
        return bool(match.class_names)  # the class is unknown until the Gateway exists


_UNASKED = object()
