"""The computed external-dns hostname includes the Gateway's accepted ListenerSets (GEP-1713).

A ListenerSet's listeners are the Gateway's listeners, but only for the sets the Gateway
accepts (``spec.allowedListeners``, default none): their hostnames count for
``sources: [listeners]``, and routes attached through them count for ``sources: [routes]``.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_mutation_helpers import GROUP, gateway, mutate, policies, review, review_document, serving, state_of

from webhook.certs import CertificateFiles

HOSTNAME = "external-dns.alpha.kubernetes.io/hostname"


def policy(sources: str) -> Any:
    return policies("apiVersion: routewarden.dev/v1alpha1\nkind: ServicePolicy\nmetadata: {name: p}\n"
                    f"spec:\n  service:\n    externalDNS: {{sources: [{sources}]}}\n")


def shared(allowed: dict[str, Any] | None) -> dict[str, Any]:
    gw = gateway("shared", "infra", class_name="cilium", hostnames=["www.example.com"])
    if allowed is not None:
        gw["spec"]["allowedListeners"] = {"namespaces": allowed}
    return gw


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {
        "kubernetes.io/metadata.name": name, **labels}}}


def listener_set(name: str, ns: str, hostname: str) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/v1", "kind": "ListenerSet", "metadata": {"name": name, "namespace": ns},
            "spec": {"parentRef": {"name": "shared", "namespace": "infra"},
                     "listeners": [{"name": "https", "port": 443, "protocol": "HTTPS", "hostname": hostname,
                                    "allowedRoutes": {"namespaces": {"from": "Same"}},
                                    "tls": {"certificateRefs": [{"name": "cert"}]}}]}}


def route(name: str, ns: str, parent: dict[str, Any], hostnames: list[str]) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/v1", "kind": "HTTPRoute", "metadata": {"name": name, "namespace": ns},
            "spec": {"parentRefs": [{"group": GROUP, **parent}], "hostnames": hostnames}}


CILIUM_SERVICE = {
    "apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "cilium-gateway-shared", "namespace": "infra",
                 "labels": {"io.cilium.gateway/owning-gateway": "shared",
                            "gateway.networking.k8s.io/gateway-name": "shared"}},
    "spec": {"type": "LoadBalancer", "ports": [{"port": 443, "protocol": "TCP"}]},
}
TEAM_A_SET = listener_set("team-a", "team-a", "*.team-a.example.com")


def hostname_of(sources: str, *objects: dict[str, Any]) -> str | None:
    _, stored = mutate(review(CILIUM_SERVICE), policy(sources), state_of(*objects))
    return stored["metadata"].get("annotations", {}).get(HOSTNAME)


@pytest.mark.parametrize(
    ("allowed", "labels", "expected"),
    [
        pytest.param(None, {}, "www.example.com", id="default-none"),
        pytest.param({"from": "None"}, {}, "www.example.com", id="none"),
        pytest.param({"from": "Same"}, {}, "www.example.com", id="same-but-set-elsewhere"),
        pytest.param({"from": "All"}, {}, "*.team-a.example.com,www.example.com", id="all"),
        pytest.param({"from": "Selector", "selector": {"matchLabels": {"tenant": "yes"}}}, {"tenant": "yes"},
                     "*.team-a.example.com,www.example.com", id="selector-matches"),
        pytest.param({"from": "Selector", "selector": {"matchLabels": {"tenant": "yes"}}}, {"tenant": "no"},
                     "www.example.com", id="selector-does-not-match"),
    ],
)
def test_listener_hostnames_include_the_sets_the_gateway_accepts(
    allowed: dict[str, Any] | None, labels: dict[str, str], expected: str
) -> None:
    """sources: [listeners] adds a ListenerSet's hostnames only when allowedListeners admits its namespace."""
    assert hostname_of("listeners", shared(allowed), namespace("team-a", **labels), TEAM_A_SET) == expected


def test_a_set_in_a_namespace_whose_labels_are_unknown_is_not_guessed() -> None:
    """A Selector on labels of a namespace the view does not hold: the set's hostname is left out."""
    allowed = {"from": "Selector", "selector": {"matchLabels": {"tenant": "yes"}}}
    assert hostname_of("listeners", shared(allowed), TEAM_A_SET) == "www.example.com"


def test_routes_attached_through_an_accepted_set_count_for_routes() -> None:
    """sources: [routes]: a route on the accepted set adds its hostname (intersected with the set's listener);
    a route on a set the Gateway refuses, or naming the set's listener on the Gateway itself, adds nothing."""
    objects = [
        shared({"from": "Selector", "selector": {"matchLabels": {"tenant": "yes"}}}),
        namespace("team-a", tenant="yes"), namespace("team-b", tenant="no"),
        TEAM_A_SET, listener_set("team-b", "team-b", "*.team-b.example.com"),
        route("app", "team-a", {"kind": "ListenerSet", "name": "team-a", "namespace": "team-a"},
              ["app.team-a.example.com", "app.elsewhere.org"]),
        route("refused", "team-b", {"kind": "ListenerSet", "name": "team-b", "namespace": "team-b"},
              ["app.team-b.example.com"]),
        route("wrong-parent", "team-a", {"kind": "Gateway", "name": "shared", "namespace": "infra",
                                         "sectionName": "https"}, ["other.team-a.example.com"]),
    ]
    assert hostname_of("routes", *objects) == "app.team-a.example.com"


async def test_through_mutate_the_generated_service_publishes_the_sets_hostname(certificates: CertificateFiles) -> None:
    """The same over real HTTPS: Cilium's CREATE of its Service gets the Gateway's and the set's names."""
    async with serving(certificates) as webhook:
        webhook.load("apiVersion: routewarden.dev/v1alpha1\nkind: ServicePolicy\nmetadata: {name: p}\n"
                     "spec:\n  service:\n    externalDNS: {sources: [listeners]}\n",
                     shared({"from": "All"}), namespace("team-a"), TEAM_A_SET)
        _, stored = await webhook.mutate(review_document(CILIUM_SERVICE))
    assert stored["metadata"]["annotations"][HOSTNAME] == "*.team-a.example.com,www.example.com"

