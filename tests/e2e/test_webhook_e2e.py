"""routewarden registered with a real kube-apiserver: bad routes are refused at apply time.

The test runs the real server (TLS with certificates from the project's own code, the
informer watching the cluster) on 127.0.0.1, registers a ValidatingWebhookConfiguration
pointing at it with ``url`` and ``caBundle`` (scoped by a namespaceSelector to the
namespaces this run creates, so nothing else in the cluster is affected), and applies
objects through the API server. This needs an API server that can reach 127.0.0.1 on
this machine (one running here, as a local control plane does); when it cannot, the
test skips and says so. Everything created is deleted in ``finally``: the webhook
configuration first.

Run with: ``KUBECONFIG=~/.kube/config pytest -m e2e tests/e2e``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid
from pathlib import Path
from typing import Any

import pytest
from e2e_support import (
    GATEWAY_GROUP,
    HOST,
    Cluster,
    api_client_fixture,  # noqa: F401 - provides the api_client fixture
    denial,
    eventually,
    first_refusal,
    grant_services,
    impersonating,
    routewarden,
    validating_webhook,
    webhook_files,
)
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

POLICY = """\
apiVersion: routewarden.dev/v1alpha1
kind: TenancyPolicy
metadata: {{name: e2e-{run}}}
spec:
  match:
    gateways: [{{namespace: {infra}, name: shared}}]
  attachment: {{mirrorListeners: true}}
  hostnames: {{required: true, unique: true}}
  references: {{requireReferenceGrant: true}}
---
apiVersion: routewarden.dev/v1alpha1
kind: ServicePolicy
metadata: {{name: e2e-{run}}}
spec:
  match:
    gatewayClassNames: [routewarden-e2e-{run}]
  service:
    profiles: [aws-nlb-internal]
    annotations: {{example.com/e2e-run: "{run}"}}
    externalDNS: {{sources: [listeners]}}
"""


def route(name: str, *, infra: str, hostnames: list[str], backends: list[dict[str, Any]] | None = None) -> dict:
    return {
        "metadata": {"name": name},
        "spec": {
            "parentRefs": [{"name": "shared", "namespace": infra}],
            "hostnames": hostnames,
            "rules": [{"backendRefs": backends or [{"name": "echo", "port": 8080}]}],
        },
    }


async def test_the_api_server_refuses_bad_routes_with_gateway_api_reasons(api_client: Any, tmp_path: Path) -> None:
    """Through kube-apiserver: NotAllowedByListeners, RefNotPermitted and a hostname hijack are
    refused at apply time (dry-run too); good routes, and a route whose grant now exists, are created."""
    cluster = Cluster(api_client)
    admission = k8s.AdmissionregistrationV1Api(api_client)
    run = uuid.uuid4().hex[:8]
    infra, apples, bananas, cherries = (f"rw-e2e-{run}-{n}" for n in ("infra", "apples", "bananas", "cherries"))
    webhook_name = f"routewarden-e2e-{run}"
    certs = webhook_files(tmp_path, POLICY.format(run=run, infra=infra))
    created: list[str] = []
    try:
        for ns, team in ((infra, None), (apples, "apples"), (bananas, "bananas"), (cherries, None)):
            await cluster.namespace(ns, run)
            created.append(ns)
            if team:
                await asyncio.to_thread(cluster.core.patch_namespace, ns, {"metadata": {"labels": {"team": team}}})
        await cluster.create("Gateway", infra, {
            "metadata": {"name": "shared"},
            "spec": {"gatewayClassName": f"routewarden-e2e-{run}", "listeners": [{
                "name": "http", "port": 80, "protocol": "HTTP", "hostname": "*.example.com",
                "allowedRoutes": {"namespaces": {"from": "Selector", "selector": {
                    "matchExpressions": [{"key": "team", "operator": "Exists"}]}}},
            }, {"name": "web", "port": 8080, "protocol": "HTTP", "hostname": f"web-{run}.example.com"}]},
        })
        async with routewarden(api_client, tmp_path / "policies", certs) as (port, state):
            await eventually(lambda: state.gateway(infra, "shared") is not None, "the Gateway in the view")
            await asyncio.to_thread(admission.create_validating_webhook_configuration, validating_webhook(
                webhook_name, run, port, certs, resources=["httproutes", "gateways", "referencegrants"]))

            # A namespace the listener does not admit. The first call also proves the API
            # server reaches the webhook; if it cannot, the rest cannot be tested here.
            outsider = route("outsider", infra=infra, hostnames=[f"cherries-{run}.example.com"])
            refused = await first_refusal(cluster, cherries, outsider)
            body = denial(refused)
            if "failed calling webhook" in body.get("message", ""):
                pytest.skip(f"the API server cannot reach the webhook at {HOST}:{port}: {body['message']}")
            assert refused.status == 403, body
            assert body["reason"] == "NotAllowedByListeners" and "does not accept routes" in body["message"], body
            with pytest.raises(ApiException) as real:
                await cluster.create("HTTPRoute", cherries, outsider)
            assert denial(real.value)["reason"] == "NotAllowedByListeners"

            # A team route on the shared Gateway is created.
            hostname = f"shop-{run}.example.com"
            await cluster.create("HTTPRoute", apples, route("shop", infra=infra, hostnames=[hostname]))
            await eventually(lambda: bool(state.routes_with_hostname(hostname)), "the route in the view")

            # Another team claiming that hostname is refused, naming the owner.
            with pytest.raises(ApiException) as hijack:
                await cluster.create("HTTPRoute", bananas, route("hijack", infra=infra, hostnames=[hostname]))
            assert denial(hijack.value)["reason"] == "HostnameConflict"
            assert apples in denial(hijack.value)["message"]

            # A cross-namespace backend without a grant is refused; with the grant it is created.
            backends = [{"name": "echo", "namespace": bananas, "port": 8080}]
            with pytest.raises(ApiException) as ungranted:
                await cluster.create("HTTPRoute", apples, route(
                    "cross", infra=infra, hostnames=[f"cross-{run}.example.com"], backends=backends))
            assert denial(ungranted.value)["reason"] == "RefNotPermitted"
            assert "ReferenceGrant" in denial(ungranted.value)["message"]
            await cluster.create("ReferenceGrant", bananas, {
                "metadata": {"name": "from-apples"},
                "spec": {"from": [{"group": GATEWAY_GROUP, "kind": "HTTPRoute", "namespace": apples}],
                         "to": [{"group": "", "kind": "Service", "name": "echo"}]},
            })
            await eventually(lambda: len(state.reference_grants(bananas)) == 1, "the grant in the view")
            await cluster.create("HTTPRoute", apples, route(
                "cross", infra=infra, hostnames=[f"cross-{run}.example.com"], backends=backends))

            # The mutating webhook annotates a Service that looks generated for the Gateway.
            await asyncio.to_thread(admission.create_mutating_webhook_configuration, {
                "metadata": {"name": webhook_name},
                "webhooks": [{
                    "name": f"mutate.{run}.e2e.routewarden.dev",
                    "clientConfig": {"url": f"https://{HOST}:{port}/mutate",
                                     "caBundle": base64.b64encode(certs.ca_cert.read_bytes()).decode()},
                    "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                               "resources": ["services"], "scope": "Namespaced"}],
                    "namespaceSelector": {"matchLabels": {"routewarden.dev/e2e": run}},
                    "sideEffects": "None", "admissionReviewVersions": ["v1"], "failurePolicy": "Fail",
                    "timeoutSeconds": 5, "reinvocationPolicy": "IfNeeded",
                }],
            })
            service = {
                "metadata": {"name": "cilium-gateway-shared", "labels": {
                    "gateway.networking.k8s.io/gateway-name": "shared", "io.cilium.gateway/owning-gateway": "shared"}},
                "spec": {"type": "LoadBalancer", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
            }
            # Written as Cilium's operator writes it: routewarden annotates only the controller's own Services.
            await grant_services(api_client, infra, {"kind": "ServiceAccount", "name": "cilium-operator",
                                                     "namespace": "kube-system"})
            operator = impersonating(api_client, "system:serviceaccount:kube-system:cilium-operator")
            annotated: dict[str, Any] = {}
            for _ in range(30):  # until the API server has loaded the new configuration
                created_service = await asyncio.to_thread(operator.create_namespaced_service, infra, service,
                                                          dry_run="All")
                annotated = created_service.metadata.annotations or {}
                if annotated:
                    break
                await asyncio.sleep(1)
            assert annotated.get("example.com/e2e-run") == run, annotated
            assert annotated.get("service.beta.kubernetes.io/aws-load-balancer-scheme") == "internal"
            assert annotated.get("external-dns.alpha.kubernetes.io/hostname") == f"*.example.com,web-{run}.example.com"
            assert created_service.spec.load_balancer_class == "service.k8s.aws/nlb"
    finally:
        with contextlib.suppress(ApiException):
            await asyncio.to_thread(admission.delete_mutating_webhook_configuration, webhook_name)
        with contextlib.suppress(ApiException):
            await asyncio.to_thread(admission.delete_validating_webhook_configuration, webhook_name)
        for ns in created:
            await cluster.delete_namespace(ns)
