"""Per-namespace hostname patterns and a TenancyException, through a real kube-apiserver.

The same wiring as test_webhook_e2e.py (real server, informer, a webhook configuration by
URL scoped to this run's namespaces): the excepted redirect route is created while its
neighbour without hostnames is refused, and ``*.{namespace}.example.com`` admits each
team's own names only.

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
from e2e_support import GATEWAY_GROUP, Cluster, api_client_fixture, eventually, webhook_files  # noqa: F401 - the api_client fixture
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from test_webhook_e2e import HOST, denial, first_refusal, route, routewarden

from webhook.certs import CertificateFiles

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

POLICIES = """\
apiVersion: routewarden.dev/v1alpha1
kind: TenancyPolicy
metadata: {{name: e2e-{run}}}
spec:
  match:
    gateways: [{{namespace: {infra}, name: shared}}]
  hostnames:
    required: true
    allowed:
      - namespaces: {{selector: {{matchLabels: {{routewarden.dev/e2e: "{run}"}}}}}}
        patterns: ["*.{{namespace}}.example.com"]
---
apiVersion: routewarden.dev/v1alpha1
kind: TenancyException
metadata: {{name: redirect-{run}}}
spec:
  rules: [hostnames/HostnameRequired]
  match: {{kinds: [HTTPRoute], namespaces: {{names: [{infra}]}}, names: [http-to-https]}}
  reason: the platform's redirect answers every hostname
"""


async def test_exceptions_and_namespace_patterns_at_apply_time(api_client: Any, tmp_path: Path) -> None:
    """The excepted route is created, its neighbour refused; each team may use only its own names."""
    cluster = Cluster(api_client)
    admission = k8s.AdmissionregistrationV1Api(api_client)
    run = uuid.uuid4().hex[:8]
    infra, apples, bananas = (f"rw-e2e-{run}-{n}" for n in ("infra", "apples", "bananas"))
    webhook_name = f"routewarden-e2e-policies-{run}"
    certs = webhook_files(tmp_path, POLICIES.format(run=run, infra=infra))
    created: list[str] = []
    try:
        for ns in (infra, apples, bananas):
            await cluster.namespace(ns, run)
            created.append(ns)
        await cluster.create("Gateway", infra, {"metadata": {"name": "shared"}, "spec": {
            "gatewayClassName": f"routewarden-e2e-{run}", "listeners": [{
                "name": "http", "port": 80, "protocol": "HTTP", "allowedRoutes": {"namespaces": {"from": "All"}}}]}})
        async with routewarden(api_client, tmp_path / "policies", certs) as (port, state):
            await eventually(lambda: state.gateway(infra, "shared") is not None, "the Gateway in the view")
            await eventually(lambda: state.has_namespace(bananas), "the namespaces in the view")
            await register_webhook(admission, webhook_name, run, port, certs)

            refused = await first_refusal(cluster, infra, route("catch-all", infra=infra, hostnames=[]))
            body = denial(refused)
            if "failed calling webhook" in body.get("message", ""):
                pytest.skip(f"the API server cannot reach the webhook at {HOST}:{port}: {body['message']}")
            assert body["reason"] == "HostnameRequired", body

            await cluster.create("HTTPRoute", infra, route("http-to-https", infra=infra, hostnames=[]))
            await cluster.create("HTTPRoute", apples, route("shop", infra=infra, hostnames=[f"shop.{apples}.example.com"]))
            with pytest.raises(ApiException) as other_team:
                await cluster.create("HTTPRoute", apples, route(
                    "hijack", infra=infra, hostnames=[f"shop.{bananas}.example.com"]))
            body = denial(other_team.value)
            assert body["reason"] == "HostnameNotAllowed"
            assert f"*.{apples}.example.com (from *.{{namespace}}.example.com)" in body["message"]
    finally:
        with contextlib.suppress(ApiException):
            await asyncio.to_thread(admission.delete_validating_webhook_configuration, webhook_name)
        for ns in created:
            await cluster.delete_namespace(ns)


async def register_webhook(admission: Any, name: str, run: str, port: int, certs: CertificateFiles) -> None:
    await asyncio.to_thread(admission.create_validating_webhook_configuration, {
        "metadata": {"name": name},
        "webhooks": [{
            "name": f"validate.{run}.policies.e2e.routewarden.dev",
            "clientConfig": {"url": f"https://{HOST}:{port}/validate",
                             "caBundle": base64.b64encode(certs.ca_cert.read_bytes()).decode()},
            "rules": [{"apiGroups": [GATEWAY_GROUP], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"],
                       "resources": ["httproutes"], "scope": "Namespaced"}],
            "namespaceSelector": {"matchLabels": {"routewarden.dev/e2e": run}},
            "matchPolicy": "Equivalent", "sideEffects": "None", "admissionReviewVersions": ["v1"],
            "failurePolicy": "Fail", "timeoutSeconds": 5,
        }],
    })
