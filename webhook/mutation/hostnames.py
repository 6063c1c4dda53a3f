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

The result is deduplicated, lower-cased and sorted, so it only changes when the set
of names changes.
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import gatewayapi as gw
from ..state.store import ClusterState
from .policy import ExternalDNS


def listener_hostnames(gateway: gw.Gateway) -> Iterator[str]:
    for listener in gateway.listeners:
        if listener.hostname:
            yield listener.hostname


def route_hostnames(gateway: gw.Gateway, state: ClusterState) -> Iterator[str]:
    """Hostnames that attached routes are served under on this Gateway."""
    for route in state.routes_attached_to(gateway.namespace, gateway.name):
        labels = state.namespace_labels(route.namespace)
        for ref in route.parent_refs:
            if not ref.is_gateway or ref.gateway_key != gateway.key:
                continue
            attachment = gw.evaluate_attachment(
                route, ref, gateway.listeners, owner_namespace=gateway.namespace, namespace_labels=labels
            )
            if attachment.reason is None:
                yield from (h for h in attachment.hostnames if h != "*")


def template_hostname(gateway: gw.Gateway, template: str) -> str:
    return template.format_map({"gateway": gateway.name, "namespace": gateway.namespace, "class": gateway.class_name})


def external_dns_hostnames(gateway: gw.Gateway, state: ClusterState, config: ExternalDNS) -> tuple[str, ...]:
    """The names to publish for ``gateway``'s Service, sorted and without duplicates."""
    names: set[str] = set()
    if "listeners" in config.sources:
        names.update(listener_hostnames(gateway))
    if "routes" in config.sources:
        names.update(route_hostnames(gateway, state))
    if "template" in config.sources and config.template:
        names.add(template_hostname(gateway, config.template))
    normalized = {gw.normalize_hostname(n) for n in names if n}
    if config.wildcards == "drop":
        normalized = {n for n in normalized if not gw.is_wildcard(n)}
    return tuple(sorted(normalized))
