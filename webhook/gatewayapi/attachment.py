"""Attachment: which listeners a parentRef selects and whether they accept the route (the ``Accepted`` condition)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .core import CORE_PROTOCOLS, GROUP, HOSTNAME_ROUTE_KINDS, NAME_LABEL
from .gateways import Gateway, Listener
from .hostnames import intersect_hostnames
from .references import ParentRef
from .routes import Route


def listeners_for_ref(listeners: Iterable[Listener], ref: ParentRef) -> tuple[Listener, ...]:
    """Listeners a parentRef selects: by sectionName and/or port; all when neither is set."""
    return tuple(
        listener
        for listener in listeners
        if (ref.section_name is None or listener.name == ref.section_name)
        and (ref.port is None or listener.port == ref.port)
    )


def gateway_admits_listenerset(
    gateway: Gateway, *, namespace: str, namespace_labels: Mapping[str, str] | None
) -> bool | None:
    """Whether ``spec.allowedListeners`` lets a ListenerSet in ``namespace`` attach (GEP-1713).

    The default is ``None``: a Gateway accepts no ListenerSet until it opts in. Returns
    None when only the (unknown) labels of the namespace could tell.
    """
    allowed = gateway.allowed_listeners_from
    if allowed == "All":
        return True
    if allowed == "Same":
        return namespace == gateway.namespace
    if allowed == "Selector" and gateway.allowed_listeners_selector is not None:
        selector = gateway.allowed_listeners_selector
        if namespace_labels is None:
            return selector.matches({NAME_LABEL: namespace}) if selector.keys <= {NAME_LABEL} else None
        return selector.matches(namespace_labels)
    return False


def listener_admits_namespace(
    listener: Listener, *, owner_namespace: str, route_namespace: str, namespace_labels: Mapping[str, str] | None
) -> bool | None:
    """Whether ``allowedRoutes.namespaces`` admits the route's namespace.

    Returns None when the answer depends on the labels of a namespace we do not know.
    ``owner_namespace`` is the namespace of the Gateway or ListenerSet holding the listener.
    """
    if listener.allowed_from == "All":
        return True
    if listener.allowed_from == "Same":
        return route_namespace == owner_namespace
    if listener.allowed_from == "Selector":
        if listener.allowed_selector is None:
            return False
        if namespace_labels is None:
            # kube-apiserver labels every namespace with its name, so a selector on that
            # label alone is decided even for a namespace the view does not hold.
            if listener.allowed_selector.keys <= {NAME_LABEL}:
                return listener.allowed_selector.matches({NAME_LABEL: route_namespace})
            return None
        return listener.allowed_selector.matches(namespace_labels)
    return False  # "None" or an unknown value admits nothing


def listener_admits_kind(listener: Listener, *, group: str, kind: str) -> bool | None:
    """Whether the listener accepts routes of this kind (``allowedRoutes.kinds``, else the
    protocol's kinds). None for an implementation-specific protocol without
    ``allowedRoutes.kinds``: which kinds it accepts is the implementation's to say."""
    if listener.allowed_kinds:
        return (group, kind) in listener.allowed_kinds
    if listener.protocol not in CORE_PROTOCOLS:
        return None
    return (group, kind) in listener.accepted_kinds()


@dataclass(frozen=True, slots=True)
class ListenerVerdict:
    """How one listener treats one parentRef of a route (for ``explain`` and the rules)."""

    listener: Listener
    namespace_allowed: bool | None  # None: the labels of the route's namespace are unknown
    kind_allowed: bool | None  # None: an implementation-specific protocol decides
    hostnames: tuple[str, ...]

    @property
    def accepts(self) -> bool:
        """Known to accept the route's namespace and kind."""
        return self.namespace_allowed is True and self.kind_allowed is True

    @property
    def may_accept(self) -> bool:
        """Not known to refuse it: accepts, or only what the view does not know could tell."""
        return self.namespace_allowed is not False and self.kind_allowed is not False

    @property
    def attaches(self) -> bool:
        return self.accepts and bool(self.hostnames)


@dataclass(frozen=True, slots=True)
class Attachment:
    """What a controller would decide for one parentRef: reason None means Accepted.

    An Accepted parentRef that no listener is *known* to accept rests on what the view
    does not know: the labels of the route's namespace (``unknown_namespace``) or the
    kinds of an implementation-specific protocol (``unknown_kind``).
    """

    ref: ParentRef
    verdicts: tuple[ListenerVerdict, ...]
    reason: str | None
    unknown_namespace: bool = False
    unknown_kind: bool = False
    attached: bool = False  # known to attach: a listener known to accept the route serves one of its hostnames

    @property
    def hostnames(self) -> tuple[str, ...]:
        out: list[str] = []
        for v in self.verdicts:
            if v.attaches:
                out.extend(h for h in v.hostnames if h not in out)
        return tuple(out)


def evaluate_attachment(
    route: Route,
    ref: ParentRef,
    listeners: tuple[Listener, ...],
    *,
    owner_namespace: str,
    namespace_labels: Mapping[str, str] | None,
) -> Attachment:
    """Predict the ``Accepted`` condition a controller sets for one parentRef.

    Order follows the spec and the conformance suite: no listener selected by
    sectionName/port -> ``NoMatchingParent``; none admits the route's namespace or
    kind -> ``NotAllowedByListeners``; none has an intersecting hostname ->
    ``NoMatchingListenerHostname``.
    """
    selected = listeners_for_ref(listeners, ref)
    if not selected:
        return Attachment(ref, (), "NoMatchingParent")
    verdicts = []
    for listener in selected:
        admitted = listener_admits_namespace(
            listener,
            owner_namespace=listener.listener_set[0] if listener.listener_set else owner_namespace,
            route_namespace=route.namespace,
            namespace_labels=namespace_labels,
        )
        kind_ok = listener_admits_kind(listener, group=GROUP, kind=route.kind)
        if route.kind in HOSTNAME_ROUTE_KINDS:
            # The spec ignores a listener hostname for protocols that do not match on hostnames.
            hostnames = intersect_hostnames(listener.hostname if listener.matches_hostnames else None, route.hostnames)
        else:
            hostnames = (listener.hostname or "*",)
        verdicts.append(ListenerVerdict(listener, admitted, kind_ok, hostnames))
    verdicts_t = tuple(verdicts)
    # Listeners known to refuse the route's namespace or kind take no part in the
    # hostname step: the route could not attach to them whatever their hostnames.
    admitting = intersecting = unknown_namespace = unknown_kind = attached = False
    for v in verdicts_t:
        if v.namespace_allowed is False or v.kind_allowed is False:
            continue
        admitting = True
        if v.hostnames:
            intersecting = True
            unknown_namespace = unknown_namespace or v.namespace_allowed is None
            unknown_kind = unknown_kind or v.kind_allowed is None
            attached = attached or (v.namespace_allowed is True and v.kind_allowed is True)
    if not admitting:
        return Attachment(ref, verdicts_t, "NotAllowedByListeners")
    if not intersecting:
        return Attachment(ref, verdicts_t, "NoMatchingListenerHostname")
    return Attachment(ref, verdicts_t, None, unknown_namespace, unknown_kind, attached)
