"""The kinds routewarden reads from the cluster, and where the API serves them."""

from __future__ import annotations

from collections.abc import Callable
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

# Watched only while the background reconciler runs: the LoadBalancer Services a gateway
# controller may have generated (the reconciler adds what the view keeps of them).
SERVICES = WatchedKind("Service", "", "services", ("v1",), field_selector="spec.type=LoadBalancer")
