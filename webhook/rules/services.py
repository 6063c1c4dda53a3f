"""Generated Services: a Service that carries a gateway controller's marks comes from that controller.

The mutating webhook already gives such a look-alike nothing (``mutation/service.py``);
this rule lets a TenancyPolicy also report it from the validating webhook, or refuse it
(``services/ImpersonatesGeneratedService``, default warn). It is a TenancyPolicy rule
because it protects the tenant that owns the imitated Gateway, chosen by the policy's
``match``, with the policy's modes and exemptions; who the controller is comes from the
ServicePolicies (``spec.controllers``) and the defaults, as for the mutation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .. import gatewayapi as gw
from ..admission import AdmissionRequest
from ..decision import Violation
from ..mutation.service import plan_service
from ..mutation.trust import request_user
from ..policy.model import PolicySet
from ..state.store import ClusterState
from .context import RuleContext


def generated_service_is_from_its_controller(
    request: AdmissionRequest, policies: PolicySet, state: ClusterState
) -> Iterator[Violation]:
    """A LoadBalancer Service whose marks name a governed Gateway was written by that Gateway's controller."""
    if request.operation not in ("CREATE", "UPDATE") or request.object is None or not policies.tenancy:
        return
    try:
        plan = plan_service(request.object, user=request_user(request), policies=policies, state=state,
                            operation=request.operation, old=request.old_object, namespace=request.namespace)
    except gw.MalformedObject:
        return  # the API server validated the Service before this webhook: nothing to judge
    finding = plan.finding
    if finding is None or plan.gateway is None:
        return
    gateway = state.gateway(*plan.gateway)
    memo: dict[Any, Any] = {}
    for policy in policies.tenancy:
        if policy.exempt.covers(namespace=request.namespace, username=request.user.username,
                                groups=request.user.groups):
            continue
        ctx = RuleContext(request, policy, state, memo)
        ref = gw.ParentRef(gw.GROUP, "Gateway", plan.gateway[0], plan.gateway[1])
        if ctx.governs(gateway) if gateway is not None else ctx.may_govern(ref):
            yield ctx.violation(finding.rule, finding.message, field=finding.field, fix=finding.fix)
