"""The kinds routewarden reads from the cluster, and where the API serves them."""

from __future__ import annotations

from dataclasses import dataclass

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

    @property
    def key(self) -> str:
        return self.kind


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
