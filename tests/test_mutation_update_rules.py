"""Two UPDATE rules through /mutate over real HTTPS: loadBalancerClass on a type change, and the hostname taken back.

* Kubernetes makes ``spec.loadBalancerClass`` immutable only from LoadBalancer to
  LoadBalancer, and Istio switches its Service's type with an UPDATE: the class is set on
  that UPDATE, and only then.
* A computed external-dns hostname is taken back when the policies no longer compute
  one, and only a value routewarden itself set (recorded in
  ``routewarden.dev/external-dns-hostname``): a value someone else set or changed stays.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest
from test_mutation_helpers import gateway, review_document, serving

from webhook.certs import CertificateFiles
from webhook.mutation.service import HOSTNAME_RECORD

HOSTNAME = "external-dns.alpha.kubernetes.io/hostname"
ISTIOD = "system:serviceaccount:istio-system:istiod"
POLICY = """\
apiVersion: routewarden.dev/v1alpha1
kind: ServicePolicy
metadata: {name: shop}
spec:
  service:
    profiles: [aws-nlb-internal]
    externalDNS: {sources: [listeners]}
"""
NAMED = gateway("shop", "team-a", class_name="istio", hostnames=["shop.example.com"])
NAMELESS = gateway("shop", "team-a", class_name="istio", hostnames=[None])


def istio_service(service_type: str = "LoadBalancer") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "shop-istio", "namespace": "team-a",
                         "labels": {"gateway.istio.io/managed": "istio.io-gateway-controller",
                                    "gateway.networking.k8s.io/gateway-name": "shop"}},
            "spec": {"type": service_type, "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80}]}}


@pytest.fixture
async def webhook(certificates: CertificateFiles) -> AsyncIterator[Any]:
    async with serving(certificates) as server:
        server.load(POLICY, NAMED)
        yield server


async def update(webhook: Any, new: dict[str, Any], old: dict[str, Any], user: str = ISTIOD) -> tuple[dict, dict]:
    return await webhook.mutate(review_document(new, operation="UPDATE", old=old, user=user))


# ----------------------------------------------------------------------------- loadBalancerClass
async def test_the_class_is_set_when_an_update_changes_the_type_to_load_balancer(webhook: Any) -> None:
    """Istio's UPDATE from ClusterIP to LoadBalancer gets the profile's class (allowed by the API then)."""
    _, stored = await update(webhook, istio_service(), istio_service("ClusterIP"))
    assert stored["spec"]["loadBalancerClass"] == "service.k8s.aws/nlb"


async def test_the_class_is_not_set_on_an_update_from_load_balancer_to_load_balancer(webhook: Any) -> None:
    """The same UPDATE of a Service that already was a load balancer: the class is immutable, so a warning."""
    response, stored = await update(webhook, istio_service(), istio_service())
    assert "loadBalancerClass" not in stored["spec"]
    assert any("when the type changes to LoadBalancer" in w for w in response["warnings"])


# ----------------------------------------------------------------------------- the hostname taken back
async def annotated(webhook: Any) -> dict[str, Any]:
    _, stored = await webhook.mutate(review_document(istio_service(), user=ISTIOD))
    assert stored["metadata"]["annotations"][HOSTNAME] == "shop.example.com"
    assert stored["metadata"]["annotations"][HOSTNAME_RECORD] == f"{HOSTNAME}=shop.example.com"
    return stored


async def test_a_hostname_no_longer_computed_is_removed_with_its_record(webhook: Any) -> None:
    """The Gateway loses its last hostname; the controller's next UPDATE (read-modify-write) loses the
    annotation routewarden set, and the request is told why."""
    stored = await annotated(webhook)
    webhook.runtime.state.apply("Gateway", NAMELESS)
    response, after = await update(webhook, copy.deepcopy(stored), stored)
    assert HOSTNAME not in after["metadata"]["annotations"] and HOSTNAME_RECORD not in after["metadata"]["annotations"]
    assert after["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internal"
    assert any(f"removed {HOSTNAME}='shop.example.com', which routewarden had set" in w for w in response["warnings"])


async def test_a_hostname_someone_changed_since_is_left(webhook: Any) -> None:
    """Someone else put their own value in the annotation: it stays; routewarden drops only its record."""
    stored = await annotated(webhook)
    stored["metadata"]["annotations"][HOSTNAME] = "theirs.example.com"
    webhook.runtime.state.apply("Gateway", NAMELESS)
    response, after = await update(webhook, copy.deepcopy(stored), stored)
    assert after["metadata"]["annotations"][HOSTNAME] == "theirs.example.com"
    assert HOSTNAME_RECORD not in after["metadata"]["annotations"]
    assert any("changed since routewarden set it" in w for w in response["warnings"])


async def test_a_hostname_routewarden_never_set_is_never_removed(webhook: Any) -> None:
    """A hand-typed hostname without a record: left as it is, with the usual warning."""
    typed = istio_service()
    typed["metadata"]["annotations"] = {HOSTNAME: "typed.example.com"}
    webhook.runtime.state.apply("Gateway", NAMELESS)
    response, after = await update(webhook, copy.deepcopy(typed), typed)
    assert after["metadata"]["annotations"][HOSTNAME] == "typed.example.com"
    assert any("no hostname to publish" in w and "left as it is" in w for w in response["warnings"])


@pytest.mark.parametrize("remaining", ["", ("apiVersion: routewarden.dev/v1alpha1\nkind: ServicePolicy\n"
                                           "metadata: {name: other}\nspec:\n  match: {gatewayClassNames: [cilium]}\n"
                                           "  service: {annotations: {k: v}}\n")])
async def test_a_hostname_is_taken_back_when_no_policy_computes_it_any_more(webhook: Any, remaining: str) -> None:
    """The ServicePolicy is deleted (no policy left, or only others): the recorded hostname goes too."""
    stored = await annotated(webhook)
    webhook.load(remaining, NAMED)
    _, after = await update(webhook, copy.deepcopy(stored), stored)
    assert HOSTNAME not in after["metadata"]["annotations"] and HOSTNAME_RECORD not in after["metadata"]["annotations"]


async def test_a_new_prefix_moves_the_hostname(webhook: Any) -> None:
    """The policy switches to external-dns.kubernetes.io/: the new key is set, the old one routewarden set is removed."""
    stored = await annotated(webhook)
    webhook.load(POLICY.replace("{sources: [listeners]}", "{sources: [listeners], prefix: external-dns.kubernetes.io/}"),
                 NAMED)
    _, after = await update(webhook, copy.deepcopy(stored), stored)
    annotations = after["metadata"]["annotations"]
    assert HOSTNAME not in annotations and annotations["external-dns.kubernetes.io/hostname"] == "shop.example.com"
    assert annotations[HOSTNAME_RECORD] == "external-dns.kubernetes.io/hostname=shop.example.com"


@pytest.mark.parametrize("why", ["untrusted-writer", "gateway-not-in-view"])
async def test_nothing_is_taken_back_on_a_guess(webhook: Any, why: str) -> None:
    """A write by someone else than the controller, or a Service whose Gateway the view does not hold: no patch."""
    stored = await annotated(webhook)
    user = "system:serviceaccount:team-a:deployer" if why == "untrusted-writer" else ISTIOD
    if why == "gateway-not-in-view":
        webhook.runtime.state.remove("Gateway", "team-a", "shop")
    else:
        webhook.runtime.state.apply("Gateway", NAMELESS)
    response, after = await update(webhook, copy.deepcopy(stored), stored, user=user)
    assert "patch" not in response and after == stored


async def test_a_hostname_a_policy_now_sets_statically_is_kept(webhook: Any) -> None:
    """The policy drops externalDNS and sets the same name as a plain annotation: it is not taken back."""
    stored = await annotated(webhook)
    webhook.load(POLICY.replace("externalDNS: {sources: [listeners]}", f"annotations: {{{HOSTNAME}: shop.example.com}}"),
                 NAMED)
    _, after = await update(webhook, copy.deepcopy(stored), stored)
    assert after["metadata"]["annotations"][HOSTNAME] == "shop.example.com"
    assert HOSTNAME_RECORD not in after["metadata"]["annotations"]
