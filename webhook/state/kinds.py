"""The kinds routewarden reads from the cluster, and where the API serves them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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
