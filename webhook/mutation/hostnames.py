"""The external-dns hostname of a generated Service, computed from its Gateway.

external-dns reads a comma-separated list in ``<prefix>hostname`` on a Service and
creates a record for each name, pointing at the load balancer. It accepts wildcard
names such as ``*.example.com`` there (a wildcard record); with the TXT registry some
DNS providers reject the ``*`` in the ownership record's name, which external-dns's
``--txt-wildcard-replacement`` flag addresses. ``wildcards: drop`` leaves wildcards out
for setups that cannot publish them.

Sources, unioned:

* ``listeners``: the Gateway's listener hostnames;
* ``routes``: the hostnames routes attached to the Gateway actually serve on it, as a
  controller would compute them (allowedRoutes and hostname intersection applied;
  catch-all routes contribute nothing);
* ``template``: one name from ``{gateway}``, ``{namespace}`` and ``{class}``.

A ListenerSet's listeners are the Gateway's listeners (GEP-1713): the listeners of every
ListenerSet the Gateway accepts (``spec.allowedListeners``; a set in a namespace whose
labels the view does not hold is left out, never guessed), but not those Conflicted in
the merged list, count for ``listeners``, and routes attached through such a set
(parentRef kind ListenerSet, judged against the set's listeners) count for ``routes``. A route whose parentRef is the Gateway itself attaches
to the Gateway's own listeners only.

The result is deduplicated, lower-cased and sorted, so it only changes when the set
of names changes.
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import gatewayapi as gw
from ..state.store import LISTENER_SOURCES, ClusterState
from .policy import ExternalDNS


def accepted_listenersets(gateway: gw.Gateway, state: ClusterState) -> dict[tuple[str, str], tuple[gw.Listener, ...]]:
    """``{(namespace, name): listeners}`` of the ListenerSets the Gateway accepts for certain,
    without their Conflicted listeners (GEP-1713's merged list: the controller serves none of them)."""
    merged = state.derived(  # the same value the ListenerSet rules keep for this view
        ("merged-listeners", gateway.key),
        lambda: gw.merge_with(gateway, state.listenersets_for(*gateway.key), labels=state.namespace_labels),
        reads=LISTENER_SOURCES,
    )
    return {
        (s.namespace, s.name): merged.usable("ListenerSet", s.namespace, s.name)
        for s in state.listenersets_for(*gateway.key)
        if any(e.owner.accepted for e in merged.of("ListenerSet", s.namespace, s.name))
    }


def listener_hostnames(gateway: gw.Gateway, listener_sets: dict[tuple[str, str], tuple[gw.Listener, ...]]) -> Iterator[str]:
    """The hostnames of the Gateway's listeners and of the listeners of its accepted ListenerSets."""
    for listener in (*gateway.listeners, *(li for listeners in listener_sets.values() for li in listeners)):
        if listener.hostname:
            yield listener.hostname


def _served(route: gw.Route, ref: gw.ParentRef, listeners: tuple[gw.Listener, ...], *, owner_namespace: str,
            state: ClusterState) -> Iterator[str]:
    attachment = gw.evaluate_attachment(
        route, ref, listeners, owner_namespace=owner_namespace, namespace_labels=state.namespace_labels(route.namespace)
    )
    if attachment.reason is None:
        yield from (h for h in attachment.hostnames if h != "*")


def route_hostnames(
    gateway: gw.Gateway, state: ClusterState, listener_sets: dict[tuple[str, str], tuple[gw.Listener, ...]]
) -> Iterator[str]:
    """Hostnames that attached routes are served under on this Gateway, directly or through its ListenerSets."""
    for route in state.routes_attached_to(gateway.namespace, gateway.name):
        for ref in route.parent_refs:
            if ref.is_gateway and ref.gateway_key == gateway.key:
                yield from _served(route, ref, gateway.listeners, owner_namespace=gateway.namespace, state=state)
    for key, listeners in listener_sets.items():
        for route in state.routes_attached_to_listenerset(*key):
            for ref in route.parent_refs:
                if ref.is_listenerset and (ref.namespace, ref.name) == key:
                    yield from _served(route, ref, listeners, owner_namespace=key[0], state=state)


def template_hostname(gateway: gw.Gateway, template: str) -> str:
    return template.format_map({"gateway": gateway.name, "namespace": gateway.namespace, "class": gateway.class_name})


def external_dns_hostnames(gateway: gw.Gateway, state: ClusterState, config: ExternalDNS) -> tuple[str, ...]:
    """The names to publish for ``gateway``'s Service, sorted and without duplicates."""
    names: set[str] = set()
    listener_sets = accepted_listenersets(gateway, state)
    if "listeners" in config.sources:
        names.update(listener_hostnames(gateway, listener_sets))
    if "routes" in config.sources:
        names.update(route_hostnames(gateway, state, listener_sets))
    if "template" in config.sources and config.template:
        names.add(template_hostname(gateway, config.template))
    normalized = {gw.normalize_hostname(n) for n in names if n}
    if config.wildcards == "drop":
        normalized = {n for n in normalized if not gw.is_wildcard(n)}
    return tuple(sorted(normalized))
