"""Mutations: the engine asks :func:`mutators_for` which mutators a request gets.

A mutator is ``mutator(obj, *, request, policies, state) -> list[str | Violation]``: it
changes ``obj`` (the engine's deep copy) in place and returns admission warnings, and
findings (recorded like a validating rule's, and returned as warnings). The engine diffs
the copy against the original into a JSON Patch; nothing here writes patch operations.

:func:`plan_service` is the Service mutation as a pure function of the Service, the
operation, its writer (or None), the policies and the cluster view: what a write gets
and whether its writer is trusted. A reconciler calls it without a writer.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import gatewayapi as gw
from ..admission import AdmissionRequest
from .gateway import add_cert_manager_issuer, default_allowed_routes
from .implementations import describe_service
from .policy import ServicePolicy
from .service import ServicePlan, annotate_generated_service, apply_plan, plan_service

Mutator = Callable[..., list[str]]


def mutators_for(request: AdmissionRequest) -> list[Mutator]:
    """Services (core v1) get the generated-Service mutator; Gateways the Gateway defaults."""
    kind = request.kind
    if kind.group == "" and kind.kind == "Service":
        return [annotate_generated_service]
    if kind.group == gw.GROUP and kind.kind == "Gateway":
        return [add_cert_manager_issuer, default_allowed_routes]
    return []


__all__ = ["Mutator", "ServicePlan", "ServicePolicy", "apply_plan", "describe_service", "mutators_for", "plan_service"]

