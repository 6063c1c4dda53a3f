"""Gateway defaults from a ServicePolicy's gateway section, and owning-Gateway resolution edge cases."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import pytest
from test_mutation_helpers import captured, gateway, mutate, policies, review, state_of

from webhook.admission import parse_review
from webhook.mutation import describe_service
from webhook.state.store import ClusterState

GATEWAY_POLICY = """apiVersion: routewarden.dev/v1alpha1
kind: ServicePolicy
metadata: {name: gateway-defaults}
spec:
  match: {gatewayClassNames: [cilium]}
  gateway:
    certManager: {clusterIssuer: letsencrypt}
    defaultAllowedRoutes:
      namespaces:
        from: Selector
        selector: {matchLabels: {exposed: "true"}}
"""
SELECTOR = {"namespaces": {"from": "Selector", "selector": {"matchLabels": {"exposed": "true"}}}}


def test_the_captured_gateway_gets_the_issuer_and_only_its_defaulted_listener_changes() -> None:
    """gateway-create: https terminates TLS, so the issuer is added; the Selector listener keeps its own allowedRoutes."""
    request = parse_review(captured("gateway-create"))
    _decision, stored = mutate(request, policies(GATEWAY_POLICY), ClusterState())
    assert stored["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "letsencrypt"}
    http, https = stored["spec"]["listeners"]
    assert http["allowedRoutes"] == request.object["spec"]["listeners"][0]["allowedRoutes"]
    assert https["allowedRoutes"] == SELECTOR
    again, _ = mutate(review(stored), policies(GATEWAY_POLICY), ClusterState())
    assert again.patch == ()


@pytest.mark.parametrize("existing", ["cert-manager.io/issuer", "cert-manager.io/cluster-issuer"])
def test_a_gateway_that_names_an_issuer_keeps_it(existing: str) -> None:
    """The Gateway owner's choice of issuer is never replaced or doubled."""
    obj = gateway("echo", "echo", class_name="cilium", hostnames=["echo.example.com"], annotations={existing: "own"})
    _, stored = mutate(review(obj), policies(GATEWAY_POLICY), ClusterState())
    assert stored["metadata"]["annotations"] == {existing: "own"}


def test_a_gateway_without_tls_termination_gets_no_issuer() -> None:
    """HTTP-only Gateways have no certificate to issue."""
    obj = gateway("echo", "echo", class_name="cilium", hostnames=["echo.example.com"])
    obj["spec"]["listeners"][0].update(protocol="HTTP", port=80)
    del obj["spec"]["listeners"][0]["tls"]
    _, stored = mutate(review(obj), policies(GATEWAY_POLICY), ClusterState())
    assert "annotations" not in stored["metadata"]


def test_the_keep_annotation_preserves_an_explicit_same() -> None:
    """routewarden.dev/allowed-routes: keep is how an owner who wrote from: Same keeps it."""
    obj = gateway("echo", "echo", class_name="cilium", hostnames=["echo.example.com"],
                  annotations={"routewarden.dev/allowed-routes": "keep"})
    _, stored = mutate(review(obj, operation="UPDATE", old=copy.deepcopy(obj)), policies(GATEWAY_POLICY), ClusterState())
    assert stored["spec"]["listeners"][0]["allowedRoutes"] == {"namespaces": {"from": "Same"}}


def test_a_gateway_of_another_class_is_not_changed() -> None:
    """The gateway section follows the policy's match like the service section."""
    obj = gateway("echo", "echo", class_name="istio", hostnames=["echo.example.com"])
    decision, _ = mutate(review(obj), policies(GATEWAY_POLICY), ClusterState())
    assert decision.patch == ()


# ----------------------------------------------------------------------------- owning Gateway
LONG = "a-gateway-name-that-is-much-longer-than-a-label-value-may-be-in-kubernetes"


def generated(labels: dict[str, str], namespace: str = "echo") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc", "namespace": namespace, "labels": labels},
            "spec": {"type": "LoadBalancer"}}


@pytest.mark.parametrize(
    "value",
    [
        f"{LONG[:50]}-{hashlib.sha256(LONG.encode()).hexdigest()[:12]}",  # kgateway's safe label value
        LONG[:63],  # plain truncation
        f"{LONG[:40]}-0a1b2c3d",  # another controller's truncation and hash
    ],
)
def test_a_truncated_gateway_name_label_is_matched_to_the_long_gateway(value: str) -> None:
    """Over 63 characters the label cannot hold the name: its truncated or hashed form is matched in the namespace."""
    state = state_of(gateway(LONG, "echo", class_name="kgateway", hostnames=["a.example.com"]),
                     gateway("short", "echo", class_name="kgateway", hostnames=["b.example.com"]))
    implementation, key, why = describe_service(generated({"gateway.networking.k8s.io/gateway-name": value}), state)
    assert (implementation, key) == ("gateway-api", ("echo", LONG)), why


def test_an_owner_reference_names_the_gateway_whatever_the_labels_say() -> None:
    """The ownerReference carries the full name, so it is trusted before a (possibly truncated) label."""
    obj = generated({"gateway.networking.k8s.io/gateway-name": LONG[:63]})
    obj["metadata"]["ownerReferences"] = [{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                                           "name": LONG, "uid": "3f0b9a52-5d1e-4d43-9a57-0c3c2f6a1e11"}]
    assert describe_service(obj, ClusterState())[:2] == ("gateway-api", ("echo", LONG))


def test_an_ambiguous_truncated_label_names_no_gateway() -> None:
    """Two long Gateways sharing the truncated prefix: routewarden does not pick one."""
    state = state_of(gateway(LONG + "-one", "echo", class_name="x", hostnames=["a.example.com"]),
                     gateway(LONG + "-two", "echo", class_name="x", hostnames=["b.example.com"]))
    _implementation, key, why = describe_service(generated({"gateway.networking.k8s.io/gateway-name": LONG[:63]}), state)
    assert key is None and "several" in why


def test_envoy_gateway_merged_gateways_name_no_single_gateway() -> None:
    """With mergeGateways the Service belongs to a GatewayClass: nothing per Gateway is applied."""
    obj = generated({"gateway.envoyproxy.io/owning-gatewayclass": "eg", "app.kubernetes.io/managed-by": "envoy-gateway"},
                    namespace="envoy-gateway-system")
    implementation, key, why = describe_service(obj, ClusterState())
    assert (implementation, key) == ("envoy-gateway", None) and "merged" in why


def test_a_service_with_no_gateway_marks_is_not_generated() -> None:
    """No label and no ownerReference: implementation None, with the reason."""
    implementation, key, why = describe_service(generated({"app": "echo"}), ClusterState())
    assert (implementation, key) == (None, None) and "not a generated Service" in why
