"""Defaults a ServicePolicy's ``gateway`` section adds to Gateways.

* ``certManager``: the cert-manager issuer annotation, on Gateways with a listener that
  terminates TLS (protocol HTTPS, or TLS with mode Terminate), so cert-manager's
  gateway-shim issues their certificates. A Gateway that already names an issuer
  (``cert-manager.io/issuer`` or ``cert-manager.io/cluster-issuer``) is left alone.

* ``defaultAllowedRoutes``: the ``allowedRoutes`` of listeners that have none. By the
  time a mutating webhook sees a Gateway, the CRD has already defaulted a missing
  ``allowedRoutes`` to ``{namespaces: {from: Same}}``, so "none" cannot be told apart
  from that exact value written by hand. routewarden therefore treats a listener whose
  ``allowedRoutes`` is exactly ``{namespaces: {from: Same}}`` (no selector, no kinds)
  as having none, on CREATE and UPDATE alike (GitOps tools re-apply manifests without
  the field, so a CREATE-only default would flip back on the next sync). A Gateway
  owner who means ``Same`` opts out with the annotation
  ``routewarden.dev/allowed-routes: keep``; any other value is kept as written.
"""

from __future__ import annotations

import copy
from typing import Any

from .. import gatewayapi as gw
from ..admission import AdmissionRequest
from ..policy.model import PolicySet
from ..state.store import ClusterState
from .policy import GatewaySettings, desired_gateway, matching

CRD_DEFAULT_ALLOWED_ROUTES = {"namespaces": {"from": "Same"}}
ISSUER_ANNOTATIONS = ("cert-manager.io/issuer", "cert-manager.io/cluster-issuer")
KEEP_ALLOWED_ROUTES = "routewarden.dev/allowed-routes"


def _settings(obj: dict[str, Any], request: AdmissionRequest, policies: PolicySet, state: ClusterState) -> tuple[gw.Gateway, GatewaySettings]:
    gateway = gw.Gateway.from_object(obj, namespace=request.namespace)
    chosen = matching(policies.services, gateway, state.namespace_labels(gateway.namespace))
    return gateway, desired_gateway(chosen)


def terminates_tls(listener: gw.Listener) -> bool:
    return listener.protocol == "HTTPS" or (listener.protocol == "TLS" and listener.tls_mode == "Terminate")


def add_cert_manager_issuer(
    obj: dict[str, Any], *, request: AdmissionRequest, policies: PolicySet, state: ClusterState
) -> list[str]:
    """Name the policy's cert-manager issuer on Gateways that terminate TLS and name none."""
    if not policies.services:
        return []
    gateway, settings = _settings(obj, request, policies, state)
    if settings.issuer is None or not any(terminates_tls(listener) for listener in gateway.listeners):
        return []
    if any(key in gateway.meta.annotations for key in ISSUER_ANNOTATIONS):
        return []
    key, issuer = settings.issuer
    obj["metadata"]["annotations"] = {**gateway.meta.annotations, key: issuer}
    return []


def default_allowed_routes(
    obj: dict[str, Any], *, request: AdmissionRequest, policies: PolicySet, state: ClusterState
) -> list[str]:
    """Give listeners left at the CRD's default the policy's allowedRoutes (see the module docstring)."""
    if not policies.services:
        return []
    gateway, settings = _settings(obj, request, policies, state)
    if settings.default_allowed_routes is None or gateway.meta.annotations.get(KEEP_ALLOWED_ROUTES) == "keep":
        return []
    for listener in obj["spec"].get("listeners") or []:
        if listener.get("allowedRoutes", CRD_DEFAULT_ALLOWED_ROUTES) == CRD_DEFAULT_ALLOWED_ROUTES:
            listener["allowedRoutes"] = copy.deepcopy(dict(settings.default_allowed_routes))
    return []
