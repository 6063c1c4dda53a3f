"""The kinds routewarden reads from the cluster, and where the API serves them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

GATEWAY_GROUP = "gateway.networking.k8s.io"


@dataclass(frozen=True, slots=True)
class WatchedKind:
    """A kind the cluster view holds. ``versions`` are tried in order (newest first)."""

    kind: str
    group: str
    plural: str
    versions: tuple[str, ...]
    namespaced: bool = True
    # A label selector applied to list/watch, so only the objects a rule needs are held.
    label_selector: str = ""
    # A field selector applied to list/watch, likewise.
    field_selector: str = ""
    # Watch one namespace only ("": every namespace).
    namespace: str = ""
    # What the view holds of an object as it arrives: a slimmer copy, or None to hold nothing
    # (an object that stops qualifying is removed).
    keep: Callable[[dict[str, Any]], dict[str, Any] | None] | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        """The watch's name: the kind, and the namespace when it watches one."""
        return f"{self.kind}/{self.namespace}" if self.namespace else self.kind

    def in_namespace(self, namespace: str) -> WatchedKind:
        return replace(self, namespace=namespace)

    def with_keep(self, keep: Callable[[dict[str, Any]], dict[str, Any] | None]) -> WatchedKind:
        return replace(self, keep=keep)


ROUTE_KINDS = ("HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute")

WATCHED_KINDS: tuple[WatchedKind, ...] = (
    WatchedKind("Namespace", "", "namespaces", ("v1",), namespaced=False),
    WatchedKind("GatewayClass", GATEWAY_GROUP, "gatewayclasses", ("v1", "v1beta1"), namespaced=False),
    WatchedKind("Gateway", GATEWAY_GROUP, "gateways", ("v1", "v1beta1")),
    WatchedKind("ReferenceGrant", GATEWAY_GROUP, "referencegrants", ("v1", "v1beta1")),
    WatchedKind("HTTPRoute", GATEWAY_GROUP, "httproutes", ("v1", "v1beta1")),
    WatchedKind("GRPCRoute", GATEWAY_GROUP, "grpcroutes", ("v1",)),
    WatchedKind("TLSRoute", GATEWAY_GROUP, "tlsroutes", ("v1", "v1alpha3", "v1alpha2")),
    WatchedKind("TCPRoute", GATEWAY_GROUP, "tcproutes", ("v1", "v1alpha2")),
    WatchedKind("UDPRoute", GATEWAY_GROUP, "udproutes", ("v1", "v1alpha2")),
    WatchedKind("ListenerSet", GATEWAY_GROUP, "listenersets", ("v1",)),
)

KINDS_BY_NAME = {k.kind: k for k in WATCHED_KINDS}


def group_of(obj: Mapping[str, Any]) -> str | None:
    """The API group an object's ``apiVersion`` names (``""`` for core), None without one."""
    api_version = obj.get("apiVersion")
    if not isinstance(api_version, str):
        return None
    return api_version.rpartition("/")[0]


def watched_kind_of(obj: Mapping[str, Any]) -> WatchedKind | None:
    """The kind the cluster view holds ``obj`` as, or None when it holds no such object.

    The view is keyed by kind *within its API group*: an Istio ``networking.istio.io``
    Gateway or a Linkerd ``policy.linkerd.io`` HTTPRoute shares a kind name with a
    Gateway API kind but is another object, never governed and never in the view. An
    object without ``apiVersion`` (as list items and tests may give it) is taken to be
    of the watched kind's group.
    """
    kind = obj.get("kind")
    watched = KINDS_BY_NAME.get(kind) if isinstance(kind, str) else None
    if watched is None:
        return None
    group = group_of(obj)
    return watched if group is None or group == watched.group else None


# The Gateway API release routewarden targets, and the versions its standard channel
# serves (``served: true`` in its CRDs; tests/test_api_groups.py reads them). The
# experimental channel serves more (TCPRoute v1alpha2, ...), which only some clusters install.
GATEWAY_API_RELEASE = "v1.6"
STANDARD_SERVED: Mapping[str, tuple[str, ...]] = {
    "GatewayClass": ("v1", "v1beta1"),
    "Gateway": ("v1", "v1beta1"),
    "HTTPRoute": ("v1", "v1beta1"),
    "ReferenceGrant": ("v1", "v1beta1"),
    "GRPCRoute": ("v1",),
    "TLSRoute": ("v1",),
    "TCPRoute": ("v1",),
    "UDPRoute": ("v1",),
    "ListenerSet": ("v1",),
    "BackendTLSPolicy": ("v1",),
}


def unserved_version(obj: Mapping[str, Any]) -> str:
    """Why the standard channel of :data:`GATEWAY_API_RELEASE` would not serve ``obj``'s
    apiVersion ("" when it does, or when the object is not a Gateway API kind)."""
    kind, api_version = obj.get("kind"), obj.get("apiVersion")
    served = STANDARD_SERVED.get(kind) if isinstance(kind, str) else None
    if served is None or not isinstance(api_version, str) or group_of(obj) != GATEWAY_GROUP:
        return ""
    version = api_version.rpartition("/")[2]
    if version in served:
        return ""
    return (f"{kind} {api_version} is not served by the standard channel of Gateway API {GATEWAY_API_RELEASE} "
            f"(it serves {', '.join(served)}): kube-apiserver refuses it unless the experimental channel is "
            f"installed; use {GATEWAY_GROUP}/{served[0]}")


# Watched only while the background reconciler runs: the LoadBalancer Services a gateway
# controller may have generated (the reconciler adds what the view keeps of them).
SERVICES = WatchedKind("Service", "", "services", ("v1",), field_selector="spec.type=LoadBalancer")
