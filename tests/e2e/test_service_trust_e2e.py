"""Against a real kube-apiserver: only the controller's own Service gets the Gateway's hostname.

Envoy Gateway runs one controller per tenant here: the ServicePolicy names team-infra's
controller (``spec.controllers``), a ServiceAccount in its own namespace. The Service it
generates for Gateway ``<infra>/shared`` is created through kube-apiserver as that
ServiceAccount (impersonation, which the harness admin may do) and gets the hostname.
The same Service created by a tenant user, who may create Services in its own
namespace, gets none: the mutating webhook warns, naming the Gateway, and the
validating webhook reports it (the rule in warn mode) or refuses it (enforce). Both webhooks are registered with the ``matchConditions`` of
``deploy/base``, so kube-apiserver itself compiles and evaluates them.

Run with: ``KUBECONFIG=... pytest -m e2e tests/e2e``; skipped without a cluster.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e_support import (
    HOST,
    Cluster,
    api_client_fixture,  # noqa: F401 - provides the api_client fixture
    eventually,
    grant_services,
    impersonating,
    routewarden,
    webhook_files,
)
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from webhook.certs import CertificateFiles

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "base"
HOSTNAME = "external-dns.alpha.kubernetes.io/hostname"
POLICIES = """\
apiVersion: routewarden.dev/v1alpha1
kind: ServicePolicy
metadata: {{name: e2e-{run}}}
spec:
  match: {{gatewayClassNames: [routewarden-e2e-{run}]}}
  controllers:
    envoy-gateway:
      serviceAccounts: [{controller_ns}/envoy-gateway]
      serviceNamespaces: [{controller_ns}]
  service:
    annotations: {{example.com/e2e-run: "{run}"}}
    externalDNS: {{sources: [listeners]}}
---
apiVersion: routewarden.dev/v1alpha1
kind: TenancyPolicy
metadata: {{name: e2e-{run}}}
spec:
  match: {{gateways: [{{namespace: {infra}, name: shared}}]}}
  rules: {{services/ImpersonatesGeneratedService: {mode}}}
"""


def conditions(path: str, name: str) -> list[dict[str, Any]]:
    """The matchConditions of webhook ``name`` in deploy/base (what a cluster installs)."""
    (configuration,) = yaml.safe_load_all((DEPLOY / path).read_text())
    return next(h for h in configuration["webhooks"] if h["name"] == name)["matchConditions"]


def webhook(name: str, *, port: int, path: str, certs: CertificateFiles, run: str, match: list[dict[str, Any]]) -> dict:
    return {
        "name": name,
        "clientConfig": {"url": f"https://{HOST}:{port}{path}",
                         "caBundle": base64.b64encode(certs.ca_cert.read_bytes()).decode()},
        "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                   "resources": ["services"], "scope": "Namespaced"}],
        "namespaceSelector": {"matchLabels": {"routewarden.dev/e2e": run}},
        "matchConditions": match,
        "matchPolicy": "Equivalent", "sideEffects": "None", "admissionReviewVersions": ["v1"],
        "failurePolicy": "Fail", "timeoutSeconds": 5,
    }


def envoy_service(name: str, infra: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {
            "app.kubernetes.io/managed-by": "envoy-gateway", "app.kubernetes.io/name": "envoy",
            "gateway.envoyproxy.io/owning-gateway-name": "shared",
            "gateway.envoyproxy.io/owning-gateway-namespace": infra}},
        "spec": {"type": "LoadBalancer", "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                                                    "targetPort": 10443}]},
    }


async def create(api: k8s.CoreV1Api, namespace: str, body: dict[str, Any], **options: Any) -> tuple[Any, list[str]]:
    """Create a Service; the object and the warnings kube-apiserver returned (``Warning`` headers)."""
    obj, _, headers = await asyncio.to_thread(api.create_namespaced_service_with_http_info, namespace, body, **options)
    return obj, [h for k, h in headers.items() if k.lower() == "warning"]


@pytest.mark.parametrize("mode", ["warn", "enforce"])
async def test_only_the_controllers_own_service_gets_the_gateways_hostname(
    api_client: Any, tmp_path: Path, mode: str
) -> None:
    """The controller's Service is annotated; the tenant's identical Service gets no hostname and a warning naming
    the Gateway (rule in warn mode), or is refused (enforce)."""
    cluster = Cluster(api_client)
    admission = k8s.AdmissionregistrationV1Api(api_client)
    run = uuid.uuid4().hex[:8]
    infra, controller_ns, tenant_ns = (f"rw-e2e-{run}-{n}" for n in ("infra", "eg", "tenant"))
    tenant = f"tenant-{run}"
    certs = webhook_files(tmp_path, POLICIES.format(run=run, infra=infra, controller_ns=controller_ns, mode=mode), name="policies.yaml")
    names = f"routewarden-e2e-{run}"
    created: list[str] = []
    try:
        for ns in (infra, controller_ns, tenant_ns):
            await cluster.namespace(ns, run)
            created.append(ns)
        await grant_services(api_client, controller_ns, {"kind": "ServiceAccount", "name": "envoy-gateway",
                                                         "namespace": controller_ns})
        await grant_services(api_client, tenant_ns, {"kind": "User", "name": tenant,
                                                     "apiGroup": "rbac.authorization.k8s.io"})
        await cluster.create("Gateway", infra, {"metadata": {"name": "shared"}, "spec": {
            "gatewayClassName": f"routewarden-e2e-{run}",
            "listeners": [{"name": "web", "port": 80, "protocol": "HTTP", "hostname": f"shop-{run}.example.com"}]}})
        async with routewarden(api_client, tmp_path / "policies", certs) as (port, state):
            await eventually(lambda: state.gateway(infra, "shared") is not None, "the Gateway in the view")
            await asyncio.to_thread(admission.create_mutating_webhook_configuration, {
                "metadata": {"name": names},
                "webhooks": [{**webhook(f"services.mutate.{run}.e2e.routewarden.dev", port=port, path="/mutate",
                                        certs=certs, run=run, match=conditions(
                                            "mutatingwebhookconfiguration.yaml", "services.mutate.routewarden.dev")),
                              "reinvocationPolicy": "IfNeeded"}]})
            await asyncio.to_thread(admission.create_validating_webhook_configuration, {
                "metadata": {"name": names},
                "webhooks": [webhook(f"services.validate.{run}.e2e.routewarden.dev", port=port, path="/validate",
                                     certs=certs, run=run, match=conditions(
                                         "validatingwebhookconfiguration.yaml", "services.validate.routewarden.dev"))]})

            # The controller's own Service, as its ServiceAccount creates it.
            controller = impersonating(api_client, f"system:serviceaccount:{controller_ns}:envoy-gateway")
            generated = envoy_service(f"envoy-{infra}-shared-1a2b3c4d", infra)
            annotations: dict[str, str] = {}
            for _ in range(30):  # until the API server has loaded the new configurations
                obj, _ = await create(controller, controller_ns, generated, dry_run="All")
                annotations = obj.metadata.annotations or {}
                if annotations:
                    break
                await asyncio.sleep(1)
            assert annotations.get("example.com/e2e-run") == run, annotations
            obj, warnings = await create(controller, controller_ns, generated)
            assert obj.metadata.annotations[HOSTNAME] == f"shop-{run}.example.com"
            assert warnings == []

            # The same Service, created by a tenant in its own namespace.
            tenant_api = impersonating(api_client, tenant)
            if mode == "enforce":
                with pytest.raises(ApiException) as refused:
                    await create(tenant_api, tenant_ns, envoy_service("shop", infra))
                body = json.loads(refused.value.body)
                assert (refused.value.status, body["reason"]) == (403, "ImpersonatesGeneratedService"), body
                assert f"Gateway {infra}/shared" in body["message"] and tenant in body["message"]
                return
            obj, warnings = await create(tenant_api, tenant_ns, envoy_service("shop", infra))
            assert HOSTNAME not in (obj.metadata.annotations or {})
            assert warnings and all("ImpersonatesGeneratedService" in w for w in warnings), warnings
            assert any(f"Gateway {infra}/shared" in w and tenant in w for w in warnings), warnings
    finally:
        for delete in (admission.delete_mutating_webhook_configuration,
                       admission.delete_validating_webhook_configuration):
            with contextlib.suppress(ApiException):
                await asyncio.to_thread(delete, names)
        for ns in created:
            await cluster.delete_namespace(ns)
