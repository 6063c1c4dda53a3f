"""Each controller's generated Service gets the Kyverno-equivalent patch, and a re-run gets none."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from test_mutation_helpers import REPO, captured, gateway, mutate, review, state_of

from webhook.mutation import describe_service
from webhook.policy.loader import load_paths

# What the Kyverno ClusterPolicy of docs/migrating-from-kyverno.md gave Service echo/cilium-gateway-echo.
KYVERNO_ANNOTATIONS = {
    "external-dns.alpha.kubernetes.io/hostname": "echo.example.com",
    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
    "service.beta.kubernetes.io/aws-load-balancer-backend-protocol": "tcp",
}
KYVERNO_CLASS = "service.k8s.aws/nlb"
# routewarden also records the hostname it computed, so that it takes back only its own value.
RECORD = {"routewarden.dev/external-dns-hostname": "external-dns.alpha.kubernetes.io/hostname=echo.example.com"}
OWNER = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "name": "echo",
         "uid": "3f0b9a52-5d1e-4d43-9a57-0c3c2f6a1e11", "controller": True}
# Built-in defaults kube-apiserver has applied before the mutating webhook (see the fixtures' README).
DEFAULTS = {"sessionAffinity": "None", "externalTrafficPolicy": "Cluster",
            "allocateLoadBalancerNodePorts": True, "internalTrafficPolicy": "Cluster"}


def service(name: str, namespace: str, labels: dict[str, str], *, owners: list[dict[str, Any]] | None = None,
            ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels}
    if owners:
        metadata["ownerReferences"] = owners
    return {
        "apiVersion": "v1", "kind": "Service", "metadata": metadata,
        "spec": {"ports": ports or [{"name": "https", "protocol": "TCP", "port": 443, "targetPort": 443}],
                 "selector": dict(labels), "type": "LoadBalancer", **DEFAULTS},
    }


def cilium() -> dict[str, Any]:
    """The captured Cilium Service, renamed to the echo setup (its labels and owner as Cilium sets them)."""
    obj = copy.deepcopy(captured("service-create-generated-loadbalancer")["request"]["object"])
    obj["metadata"].update(name="cilium-gateway-echo", namespace="echo",
                           labels={"gateway.networking.k8s.io/gateway-name": "echo",
                                   "io.cilium.gateway/owning-gateway": "echo"},
                           ownerReferences=[OWNER])
    del obj["metadata"]["annotations"]
    del obj["metadata"]["managedFields"]
    return obj


# implementation -> (GatewayClass, the Service its controller generates for Gateway echo/echo)
GENERATED = {
    "cilium": ("cilium", cilium()),
    "istio": ("istio", service(
        "echo-istio", "echo",
        {"gateway.istio.io/managed": "istio.io-gateway-controller",
         "gateway.networking.k8s.io/gateway-class-name": "istio",
         "gateway.networking.k8s.io/gateway-name": "echo", "istio.io/dataplane-mode": "none"},
        owners=[{**{k: v for k, v in OWNER.items() if k != "controller"},
                 "apiVersion": "gateway.networking.k8s.io/v1beta1"}],  # Istio sets no controller: true
        ports=[{"appProtocol": "tcp", "name": "status-port", "port": 15021, "protocol": "TCP", "targetPort": 15021},
               {"appProtocol": "https", "name": "https-0", "port": 443, "protocol": "TCP", "targetPort": 443}])),
    "envoy-gateway": ("eg", service(
        "envoy-echo-echo-6b8f3c1d", "envoy-gateway-system",
        {"app.kubernetes.io/component": "proxy", "app.kubernetes.io/managed-by": "envoy-gateway",
         "app.kubernetes.io/name": "envoy", "gateway.envoyproxy.io/owning-gateway-name": "echo",
         "gateway.envoyproxy.io/owning-gateway-namespace": "echo"},
        ports=[{"name": "https-443", "protocol": "TCP", "port": 443, "targetPort": 10443}])),
    "contour": ("contour", service(
        "envoy-echo", "echo",
        {"projectcontour.io/owning-gateway-name": "echo", "gateway.networking.k8s.io/gateway-name": "echo",
         "app.kubernetes.io/managed-by": "contour-gateway-provisioner"},
        owners=[OWNER])),
    "kgateway": ("kgateway", service(
        "echo", "echo",
        {"kgateway": "kube-gateway", "gateway.networking.k8s.io/gateway-name": "echo",
         "app.kubernetes.io/name": "echo", "app.kubernetes.io/instance": "echo"},
        owners=[OWNER])),
    "nginx-gateway-fabric": ("nginx", service(
        "echo-nginx", "echo",
        {"gateway.networking.k8s.io/gateway-name": "echo", "app.kubernetes.io/name": "echo-nginx",
         "app.kubernetes.io/instance": "ngf", "app.kubernetes.io/managed-by": "ngf-nginx"},
        owners=[OWNER])),
}

@pytest.fixture(scope="module")
def echo_policy() -> Any:
    """The migration example policy (policies/examples/), loaded by the real loader."""
    return load_paths([REPO / "policies" / "examples" / "servicepolicy-echo-eks.yaml"])


@pytest.mark.parametrize("implementation", sorted(GENERATED))
def test_each_generated_service_is_recognised_with_its_gateway(implementation: str) -> None:
    """describe_service names the controller and the Gateway echo/echo for every implementation."""
    class_name, obj = GENERATED[implementation]
    state = state_of(gateway("echo", "echo", class_name=class_name, hostnames=["echo.example.com"]))
    found, key, why = describe_service(obj, state)
    assert (found, key) == (implementation, ("echo", "echo")), why


@pytest.mark.parametrize("implementation", sorted(GENERATED))
def test_each_generated_service_gets_what_kyverno_gave_it_without_a_typed_hostname(implementation: str, echo_policy: Any) -> None:
    """CREATE of the generated Service by its controller: exactly the Kyverno annotations (and routewarden's
    record of the hostname) and class, hostname from the listener."""
    class_name, obj = GENERATED[implementation]
    state = state_of(gateway("echo", "echo", class_name=class_name, hostnames=["echo.example.com"]))
    decision, stored = mutate(review(obj), echo_policy, state)
    assert sorted(decision.patch, key=lambda op: op["path"]) == [
        {"op": "add", "path": "/metadata/annotations", "value": {**KYVERNO_ANNOTATIONS, **RECORD}},
        {"op": "add", "path": "/spec/loadBalancerClass", "value": KYVERNO_CLASS},
    ]
    assert decision.warnings == ()
    assert stored["metadata"]["labels"] == obj["metadata"]["labels"]


@pytest.mark.parametrize("implementation", sorted(GENERATED))
@pytest.mark.parametrize("operation", ["CREATE", "UPDATE"])
def test_running_again_on_the_patched_service_gives_no_patch(implementation: str, operation: str, echo_policy: Any) -> None:
    """Idempotent: the patched object, sent again (as a re-invocation or the controller's next update), is left as is."""
    class_name, obj = GENERATED[implementation]
    state = state_of(gateway("echo", "echo", class_name=class_name, hostnames=["echo.example.com"]))
    _, stored = mutate(review(obj), echo_policy, state)
    again = review(stored, operation=operation, old=stored if operation == "UPDATE" else None)
    decision, _ = mutate(again, echo_policy, state)
    assert decision.patch == ()
    assert decision.warnings == ()


def test_a_kong_dataplane_service_is_recognised_but_not_touched_without_its_gateway(echo_policy: Any) -> None:
    """Kong's operator owns the Service through a DataPlane: no Gateway can be named, so no patch."""
    obj = service("dataplane-ingress-echo-7xk2p-4mz9q", "echo",
                  {"app": "echo-7xk2p", "gateway-operator.konghq.com/dataplane-service-type": "ingress",
                   "gateway-operator.konghq.com/managed-by": "dataplane"},
                  owners=[{"apiVersion": "gateway-operator.konghq.com/v1beta1", "kind": "DataPlane",
                           "name": "echo-7xk2p", "uid": "0b7d9a41-2c55-4f4e-8d4b-6e2a0b9d3c77"}])
    state = state_of(gateway("echo", "echo", class_name="kong", hostnames=["echo.example.com"]))
    implementation, key, why = describe_service(obj, state)
    assert (implementation, key) == ("kong", None)
    assert "no mark names its Gateway" in why
    decision, _ = mutate(review(obj), echo_policy, state)
    assert decision.patch == ()
