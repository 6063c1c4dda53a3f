"""ListenerSets (GEP-1713) and the route kinds a listener can serve (``InvalidRouteKinds``).

A ListenerSet adds listeners to the Gateway its ``spec.parentRef`` names, once that
Gateway accepts it (``spec.allowedListeners``). Its listeners are owned by the set's
namespace: ``allowedRoutes.namespaces.from: Same`` means the set's namespace, and its
certificate references need ReferenceGrants from ``ListenerSet`` in that namespace (a
grant to the Gateway is not inherited, nor the reverse).

Route kinds: ``allowedRoutes.kinds`` "MUST correspond to kinds of Routes that are
compatible with the application protocol specified in the Listener's Protocol field";
a kind the implementation does not support is left out of the listener's
``supportedKinds`` and the listener gets ``ResolvedRefs=False, InvalidRouteKinds``.
For the core protocols the spec says which route kinds fit:

* HTTP and HTTPS: HTTPRoute and GRPCRoute;
* TLS: TLSRoute ("A Listener MUST have protocol set to TLS when a TLSRoute attaches to
  it") and TCPRoute (TLSRoute's own documentation: "you could choose to use a TCPRoute
  with a TLS listener");
* TCP: TCPRoute; UDP: UDPRoute.

So, decidable at apply time: a kind of the Gateway API group that does not fit the
protocol, or that is not a route kind at all (``InvalidRoute``, ``Gateway``), and any
kind of the core Kubernetes group (it defines no routes). A kind of any other group is
the implementation's own: unknown, never invalid. A protocol other than the core ones
(Istio's ``HBONE``, ``example.com/custom``) belongs to the implementation entirely.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .core import CORE_GROUP, GROUP, ROUTE_KINDS, Meta, _map
from .gateways import Listener, listenerset_listeners, parent_gateway

COMPATIBLE_KINDS_BY_PROTOCOL: Mapping[str, frozenset[str]] = {
    "HTTP": frozenset({"HTTPRoute", "GRPCRoute"}),
    "HTTPS": frozenset({"HTTPRoute", "GRPCRoute"}),
    "TLS": frozenset({"TLSRoute", "TCPRoute"}),
    "TCP": frozenset({"TCPRoute"}),
    "UDP": frozenset({"UDPRoute"}),
}


@dataclass(frozen=True, slots=True)
class RouteKinds:
    """A listener's ``allowedRoutes.kinds`` sorted by what the spec says of each."""

    valid: tuple[str, ...]  # kinds the protocol serves
    invalid: tuple[str, ...]  # kinds no implementation may serve on it, with why
    unknown: tuple[str, ...]  # implementation-specific kinds (other groups)

    @property
    def usable(self) -> bool | None:
        """Whether some route can attach: True, False, or None when the implementation decides."""
        if self.valid:
            return True
        return None if self.unknown else False


def _kind_name(group: str, kind: str) -> str:
    return kind if group == GROUP else f"{kind}.{group or 'core'}"


def route_kinds(listener: Listener) -> RouteKinds | None:
    """The listener's explicit route kinds, judged; None when the spec does not decide them
    (no kinds listed, so the protocol's defaults apply; or a protocol that is not core)."""
    compatible = COMPATIBLE_KINDS_BY_PROTOCOL.get(listener.protocol)
    if compatible is None or not listener.allowed_kinds:
        return None
    valid: list[str] = []
    invalid: list[str] = []
    unknown: list[str] = []
    for group, kind in dict.fromkeys(listener.allowed_kinds):
        name = _kind_name(group, kind)
        if group == GROUP and kind in compatible:
            valid.append(name)
        elif group == GROUP and kind in ROUTE_KINDS:
            invalid.append(f"{name} (not served on {listener.protocol})")
        elif group in (GROUP, CORE_GROUP):
            invalid.append(f"{name} (not a route kind)")
        else:
            unknown.append(name)
    return RouteKinds(tuple(valid), tuple(invalid), tuple(unknown))


@dataclass(frozen=True, slots=True)
class ListenerSet:
    """A ListenerSet: its Gateway (``None`` when the parentRef names another kind) and listeners."""

    meta: Meta
    parent: tuple[str, str] | None
    listeners: tuple[Listener, ...]

    @property
    def kind(self) -> str:
        return "ListenerSet"

    @property
    def namespace(self) -> str:
        return self.meta.namespace

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def key(self) -> tuple[str, str]:
        return (self.meta.namespace, self.meta.name)

    def describe(self) -> str:
        return f"ListenerSet {self.meta.namespace}/{self.meta.name}"

    @classmethod
    def from_object(cls, obj: Mapping[str, Any], *, namespace: str = "") -> ListenerSet:
        meta = Meta.from_object(obj, default_namespace=namespace)
        spec = _map(obj.get("spec"), "spec")
        return cls(meta, parent_gateway(spec, meta.namespace), listenerset_listeners(obj, namespace=namespace))
