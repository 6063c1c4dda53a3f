"""Who may write a generated Service: trust the writer, not the labels.

The marks a gateway controller puts on its Service (labels, ownerReferences) can be
written by anyone who may write a Service. A Service counts as generated for a Gateway
only when its writer is trusted:

* **the request's user is the controller's identity** (a username, or a ServiceAccount
  ``namespace/name``), and the Service is in a namespace where that controller puts its
  Services: its own namespace (Envoy Gateway: ``envoy-gateway-system``) and/or the
  Gateway's namespace. Each implementation has a default below, overridable per policy
  with ``ServicePolicy.spec.controllers``;
* **where the controller's identity is not known** (a controller routewarden recognises
  only by the Gateway API's own label and ownerReference): the Service is owned by the
  Gateway, an ownerReference of kind Gateway with ``controller: true`` (and the Gateway's
  uid when the view has it), in the Gateway's namespace. Whoever may write the Service
  may also write that reference, so wherever the identity is known the identity decides.
* **without a request user** (``routewarden check``, the background reconciler): who
  wrote the Service is unknown, so it is recognised only in the namespaces where its
  controller creates Services, and the answer says so.

Defaults, read from each implementation's own install manifests (names in
``docs/service-policy.md``, section "Trust"):

=====================  ==================================================  ==============================
implementation         identity                                            Services in
=====================  ==================================================  ==============================
envoy-gateway          ``envoy-gateway-system/envoy-gateway``              ``envoy-gateway-system``, and
                                                                           the Gateway's namespace
                                                                           (Gateway Namespace Mode)
istio                  ``istio-system/istiod``                             the Gateway's namespace
cilium                 ``kube-system/cilium-operator``                     the Gateway's namespace
contour                ``projectcontour/contour-gateway-provisioner``      the Gateway's namespace
kgateway               ``kgateway-system/kgateway``                        the Gateway's namespace
nginx-gateway-fabric   ``nginx-gateway/nginx-gateway`` (manifests),        the Gateway's namespace
                       ``nginx-gateway/ngf-nginx-gateway-fabric`` (Helm)
gateway-api            none: the ownerReference rule                       the Gateway's namespace
=====================  ==================================================  ==============================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .. import gatewayapi as gw
from ..admission import AdmissionRequest, UserInfo
from .policy import ServicePolicy

# The user ``routewarden check`` and ``test`` put on the requests they synthesize: not a
# writer, so the offline rule applies.
OFFLINE_USERNAME = "routewarden:offline-check"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True, slots=True)
class Controller:
    """One implementation's controller: who it is and where it puts the Services it generates."""

    implementation: str
    users: frozenset[str] = frozenset()
    service_accounts: frozenset[str] = frozenset()  # "namespace/name"
    service_namespaces: frozenset[str] = frozenset()
    gateway_namespace: bool = True
    source: str = "default"

    @property
    def known(self) -> bool:
        return bool(self.users or self.service_accounts)

    @property
    def usernames(self) -> tuple[str, ...]:
        accounts = (SERVICE_ACCOUNT_PREFIX + sa.replace("/", ":", 1) for sa in self.service_accounts)
        return tuple(sorted({*self.users, *accounts}))

    def is_writer(self, username: str) -> bool:
        return username in self.usernames

    def places(self, namespace: str, gateway_namespace: str) -> bool:
        return namespace in self.service_namespaces or (self.gateway_namespace and namespace == gateway_namespace)

    def describe_identity(self) -> str:
        if not self.known:
            return "no known identity"
        return " or ".join(self.usernames)

    def describe_places(self, gateway_namespace: str) -> str:
        places = [f"namespace {ns}" for ns in sorted(self.service_namespaces)]
        if self.gateway_namespace:
            places.append(f"the Gateway's namespace {gateway_namespace}")
        return " or ".join(places) or "no namespace"


def _sa(*accounts: str) -> frozenset[str]:
    return frozenset(accounts)


DEFAULT_CONTROLLERS: Mapping[str, Controller] = {
    c.implementation: c
    for c in (
        Controller("envoy-gateway", service_accounts=_sa("envoy-gateway-system/envoy-gateway"),
                   service_namespaces=frozenset({"envoy-gateway-system"})),
        Controller("istio", service_accounts=_sa("istio-system/istiod")),
        Controller("cilium", service_accounts=_sa("kube-system/cilium-operator")),
        Controller("contour", service_accounts=_sa("projectcontour/contour-gateway-provisioner")),
        Controller("kgateway", service_accounts=_sa("kgateway-system/kgateway")),
        Controller("nginx-gateway-fabric",
                   service_accounts=_sa("nginx-gateway/nginx-gateway", "nginx-gateway/ngf-nginx-gateway-fabric")),
        Controller("gateway-api"),
    )
}


def controller_for(implementation: str, policies: Sequence[ServicePolicy]) -> Controller:
    """The implementation's default controller with the ``spec.controllers`` overrides of
    ``policies`` (the ServicePolicies matching the Gateway, in the order they apply: a
    later one wins)."""
    controller = DEFAULT_CONTROLLERS.get(implementation, Controller(implementation))
    for policy in policies:
        override = policy.controllers.get(implementation)
        if override is None:
            continue
        if override.sets_identity:
            controller = replace(controller, users=override.users or frozenset(),
                                 service_accounts=override.service_accounts or frozenset())
        if override.sets_places:
            controller = replace(
                controller,
                service_namespaces=(override.service_namespaces if override.service_namespaces is not None
                                    else controller.service_namespaces),
                gateway_namespace=(override.gateway_namespace if override.gateway_namespace is not None
                                   else controller.gateway_namespace),
            )
        controller = replace(controller, source=f"ServicePolicy {policy.name}")
    return controller


def request_user(request: AdmissionRequest) -> UserInfo | None:
    """The writer of the request, or None when there is none (offline, or no userInfo)."""
    username = request.user.username
    return None if not username or username == OFFLINE_USERNAME else request.user


def owned_by_gateway(owner_refs: Iterable[Any], gateway: tuple[str, str], *, uid: str = "") -> bool:
    """An ownerReference to the Gateway with ``controller: true`` (and its uid, when known)."""
    for ref in owner_refs:
        if not isinstance(ref, dict) or ref.get("kind") != "Gateway" or ref.get("controller") is not True:
            continue
        api_version = ref.get("apiVersion")
        if not (isinstance(api_version, str) and api_version.startswith(gw.GROUP + "/")):
            continue
        if ref.get("name") == gateway[1] and (not uid or not ref.get("uid") or ref.get("uid") == uid):
            return True
    return False


@dataclass(frozen=True, slots=True)
class Trust:
    """Whether the Service's writer is its controller, and why (a sentence for messages)."""

    trusted: bool
    why: str
    offline: bool = False


def judge(
    *,
    namespace: str,
    owner_refs: Iterable[Any],
    gateway: tuple[str, str],
    gateway_uid: str,
    user: UserInfo | None,
    controller: Controller,
) -> Trust:
    """Whether a Service in ``namespace`` that names ``gateway`` comes from ``controller`` (see the module docstring)."""
    impl = controller.implementation
    gw_ns = gateway[0]
    places = controller.describe_places(gw_ns)
    placed = controller.places(namespace, gw_ns)
    if user is None:
        if placed:
            return Trust(True, f"without a request user, recognised as {impl}'s Service because it is in "
                         f"namespace {namespace}, where {impl} creates its Services ({places}); at admission only "
                         f"writes by {controller.describe_identity()} get values", offline=True)
        return Trust(False, f"without a request user, a Service is recognised only where {impl} creates its "
                     f"Services ({places}), not in namespace {namespace}", offline=True)
    if controller.known:
        if not controller.is_writer(user.username):
            return Trust(False, f"written by {user.username or 'an unknown user'}, not by {impl} "
                         f"({controller.describe_identity()}, {controller.source})")
        if not placed:
            return Trust(False, f"written by {impl}, but in namespace {namespace}, where {impl} does not put "
                         f"Services for Gateway {gw_ns}/{gateway[1]} ({places}, {controller.source})")
        return Trust(True, f"written by {impl} ({user.username})")
    if namespace == gw_ns and owned_by_gateway(owner_refs, gateway, uid=gateway_uid):
        return Trust(True, f"owned by Gateway {gw_ns}/{gateway[1]} (ownerReference with controller: true)")
    return Trust(False, f"{impl} has no known identity (set spec.controllers.{impl} in a ServicePolicy) and the "
                 f"Service has no ownerReference with controller: true to Gateway {gw_ns}/{gateway[1]} in its namespace")
