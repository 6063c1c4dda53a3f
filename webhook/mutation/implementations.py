"""Which gateway controller generated a Service, and for which Gateway.

Gateway controllers provision a Service per Gateway and mark it in their own way. What
each one writes (read from their source and test data, or, where marked, from their
documentation and released manifests):

=====================  =======================================  ==========================================
implementation         Service (name, namespace)                marks
=====================  =======================================  ==========================================
Cilium                 ``cilium-gateway-<gw>``, Gateway's ns    ``io.cilium.gateway/owning-gateway``,
                                                                ``gateway.networking.k8s.io/gateway-name``,
                                                                ownerReference Gateway (controller)
Istio                  ``<gw>-<class>``, Gateway's ns           ``gateway.istio.io/managed:
                                                                istio.io-gateway-controller``,
                                                                ``gateway.networking.k8s.io/gateway-name``,
                                                                ``gateway.networking.k8s.io/gateway-class-name``
                                                                (older: ``istio.io/gateway-name``),
                                                                ownerReference Gateway
Envoy Gateway          ``envoy-<ns>-<gw>-<hash>`` in the        ``gateway.envoyproxy.io/owning-gateway-name``
                       controller's ns (envoy-gateway-system)   and ``-namespace``; no ownerReference (it
                                                                would cross namespaces). Merged Gateways
                                                                carry ``owning-gatewayclass`` instead.
Contour (provisioner)  ``envoy-<gw>``, Gateway's ns             ``projectcontour.io/owning-gateway-name``,
                                                                ``gateway.networking.k8s.io/gateway-name``
kgateway               ``<gw>``, Gateway's ns                   ``kgateway: kube-gateway``,
                                                                ``gateway.networking.k8s.io/gateway-name``
                                                                (over 63 characters: the first 50, ``-``,
                                                                12 hex digits of its SHA-256)
NGINX Gateway Fabric   ``<gw>-<class>``, Gateway's ns           ``gateway.networking.k8s.io/gateway-name``,
                                                                ``app.kubernetes.io/managed-by:
                                                                <release>-nginx``, ownerReference Gateway
                                                                (from its documentation)
Kong (operator)        ``dataplane-ingress-<dp>-<hash>``        ``gateway-operator.konghq.com/dataplane-service-type:
                                                                ingress``; owned by a DataPlane, not by the
                                                                Gateway (from its documentation)
Traefik                no Service per Gateway: its own Service comes from its Helm chart, so
                       there is nothing generated to recognise.
=====================  =======================================  ==========================================

Every implementation is also recognised through the standard
``gateway.networking.k8s.io/gateway-name`` label and an ownerReference of kind Gateway,
so a controller not listed here that follows the Gateway API's conventions works too.

Resolution order for the owning Gateway: Envoy Gateway's name and namespace labels (the
only marks that carry a namespace); then an ownerReference of kind Gateway (never
truncated, and ownerReferences are namespace-local, so the Gateway lives in the
Service's namespace); then the name labels, looked up in the cluster view. A label value
is at most 63 characters, so controllers truncate longer Gateway names, some adding a
hash: such a value is matched against the Gateway names in that namespace.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import gatewayapi as gw
from ..state.store import ClusterState

GATEWAY_NAME = "gateway.networking.k8s.io/gateway-name"
GATEWAY_CLASS_NAME = "gateway.networking.k8s.io/gateway-class-name"
CILIUM_OWNING_GATEWAY = "io.cilium.gateway/owning-gateway"
ISTIO_MANAGED = "gateway.istio.io/managed"
ISTIO_GATEWAY_NAME = "istio.io/gateway-name"
ENVOY_GATEWAY_NAME = "gateway.envoyproxy.io/owning-gateway-name"
ENVOY_GATEWAY_NAMESPACE = "gateway.envoyproxy.io/owning-gateway-namespace"
ENVOY_GATEWAY_CLASS = "gateway.envoyproxy.io/owning-gatewayclass"
CONTOUR_OWNING_GATEWAY = "projectcontour.io/owning-gateway-name"
KGATEWAY = "kgateway"
KONG_SERVICE_TYPE = "gateway-operator.konghq.com/dataplane-service-type"
MANAGED_BY = "app.kubernetes.io/managed-by"

# Label keys whose value is the owning Gateway's name (namespace: the Service's), in the
# order they are trusted.
NAME_LABELS = (GATEWAY_NAME, CILIUM_OWNING_GATEWAY, ISTIO_GATEWAY_NAME, CONTOUR_OWNING_GATEWAY)
LABEL_VALUE_MAX = 63
_HASH_SUFFIX = re.compile(r"^(?P<prefix>.+)-(?P<hash>[0-9a-f]{5,16})$")


@dataclass(frozen=True, slots=True)
class Owner:
    """What :func:`identify` found: the implementation, the Gateway key (or None), and why."""

    implementation: str | None
    gateway: tuple[str, str] | None
    why: str


def implementation_of(labels: Mapping[str, str], owner_refs: list[Mapping[str, Any]]) -> str | None:
    """The controller that generated a Service, from its labels; None when none did."""
    if ENVOY_GATEWAY_NAME in labels or ENVOY_GATEWAY_CLASS in labels or labels.get(MANAGED_BY) == "envoy-gateway":
        return "envoy-gateway"
    if CILIUM_OWNING_GATEWAY in labels:
        return "cilium"
    if ISTIO_MANAGED in labels or ISTIO_GATEWAY_NAME in labels:
        return "istio"
    if CONTOUR_OWNING_GATEWAY in labels:
        return "contour"
    if labels.get(KGATEWAY) == "kube-gateway":
        return "kgateway"
    if KONG_SERVICE_TYPE in labels:
        return "kong"
    if GATEWAY_NAME in labels and labels.get(MANAGED_BY, "").endswith("-nginx"):
        return "nginx-gateway-fabric"
    if GATEWAY_NAME in labels or _gateway_owner(owner_refs) is not None:
        return "gateway-api"
    return None


def _gateway_owner(owner_refs: list[Mapping[str, Any]]) -> str | None:
    for ref in owner_refs:
        if not isinstance(ref, dict):
            continue
        api_version = ref.get("apiVersion")
        if ref.get("kind") == "Gateway" and isinstance(api_version, str) and api_version.startswith(gw.GROUP + "/"):
            name = ref.get("name")
            if isinstance(name, str) and name:
                return name
    return None


def hashed_label_values(name: str) -> frozenset[str]:
    """The label values controllers write for a Gateway name too long for a label."""
    if len(name) <= LABEL_VALUE_MAX:
        return frozenset({name})
    digest = hashlib.sha256(name.encode()).hexdigest()
    return frozenset({name[:LABEL_VALUE_MAX].rstrip("-"), f"{name[:50].rstrip('-')}-{digest[:12]}"})


def _could_be_truncated(value: str) -> bool:
    return len(value) >= LABEL_VALUE_MAX - 1 or _HASH_SUFFIX.match(value) is not None


def match_label_value(value: str, namespace: str, state: ClusterState) -> tuple[str | None, str]:
    """The Gateway in ``namespace`` whose name a (possibly truncated and hashed) label value stands for."""
    if state.gateway(namespace, value) is not None:
        return value, "exact"
    if not _could_be_truncated(value):
        return None, "no such Gateway"
    names = [g.name for g in state.gateways() if g.namespace == namespace and len(g.name) > LABEL_VALUE_MAX]
    exact = [n for n in names if value in hashed_label_values(n)]
    if len(exact) == 1:
        return exact[0], "hashed"
    m = _HASH_SUFFIX.match(value)
    loose = [n for n in names if m is not None and n.startswith(m["prefix"])] if not exact else []
    if len(loose) == 1:
        return loose[0], "truncated"
    return None, "ambiguous" if len(exact) > 1 or len(loose) > 1 else "no such Gateway"


def identify(obj: Mapping[str, Any], state: ClusterState, *, namespace: str = "") -> Owner:
    """Recognise a generated Service and its owning Gateway (see the module docstring)."""
    meta = gw.Meta.from_object(obj, default_namespace=namespace)
    raw_meta = obj.get("metadata") or {}
    owner_refs = raw_meta.get("ownerReferences") or []
    if not isinstance(owner_refs, list):
        raise gw.MalformedObject("metadata.ownerReferences", "expected a list")
    labels = meta.labels
    implementation = implementation_of(labels, owner_refs)
    if implementation is None:
        return Owner(None, None, "no gateway controller label or Gateway ownerReference: not a generated Service")
    if ENVOY_GATEWAY_NAME in labels:
        gw_ns = labels.get(ENVOY_GATEWAY_NAMESPACE) or meta.namespace
        return _by_label(implementation, labels[ENVOY_GATEWAY_NAME], gw_ns, ENVOY_GATEWAY_NAME, state)
    if ENVOY_GATEWAY_CLASS in labels:
        return Owner(implementation, None, f"merged Gateways of class {labels[ENVOY_GATEWAY_CLASS]}: no single owning Gateway")
    owner = _gateway_owner(owner_refs)
    if owner is not None:
        return Owner(implementation, (meta.namespace, owner), f"ownerReference to Gateway {meta.namespace}/{owner}")
    for key in NAME_LABELS:
        if key in labels:
            return _by_label(implementation, labels[key], meta.namespace, key, state)
    return Owner(implementation, None, f"generated by {implementation} but no mark names its Gateway")


def _by_label(implementation: str, value: str, namespace: str, key: str, state: ClusterState) -> Owner:
    name, how = match_label_value(value, namespace, state)
    if name is not None and how == "exact":
        return Owner(implementation, (namespace, name), f"label {key}={value}")
    if name is not None:
        return Owner(implementation, (namespace, name), f"label {key}={value} ({how} form of Gateway {namespace}/{name})")
    if how == "ambiguous":
        return Owner(implementation, None, f"label {key}={value} is truncated and fits several Gateways in {namespace}")
    # Not in the view (yet): the label still names it; the caller reports the missing Gateway.
    return Owner(implementation, (namespace, value), f"label {key}={value}")


def describe_service(obj: Mapping[str, Any], state: ClusterState) -> tuple[str | None, tuple[str, str] | None, str]:
    """``(implementation, (namespace, name) of the owning Gateway or None, why)`` for ``explain``."""
    owner = identify(obj, state)
    return owner.implementation, owner.gateway, owner.why
