"""Through a real kube-apiserver: after a Gateway is narrowed under a route, the route can
still be labelled, get a finalizer, be deleted and lose its finalizer; moving it to another
parent that refuses it is denied. The webhook is registered with the rules of
``deploy/base/validatingwebhookconfiguration.yaml``, so a route DELETE goes through even
while routewarden is down.

Run with: ``KUBECONFIG=... pytest -m e2e tests/e2e``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e_support import (
    GATEWAY_GROUP,
    HOST,
    Cluster,
    api_client_fixture,  # noqa: F401 - provides the api_client fixture
    denial,
    eventually,
    first_refusal,
    routewarden,
    validating_webhook,
    webhook_files,
)
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from webhook.certs import CertificateFiles

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

DEPLOYED = Path(__file__).resolve().parents[2] / "deploy" / "base" / "validatingwebhookconfiguration.yaml"
POLICY = """\
apiVersion: routewarden.dev/v1alpha1
kind: TenancyPolicy
metadata: {{name: e2e-ratchet-{run}}}
spec:
  match:
    gateways: [{{namespace: {infra}, name: shared}}]
  hostnames: {{required: true, unique: true}}
"""


def deployed_webhook(name: str, run: str, port: int, certs: CertificateFiles) -> dict[str, Any]:
    """The webhook of one run, with the rules (operations per kind) and conditions of the shipped one."""
    config = validating_webhook(name, run, port, certs, resources=[])
    [shipped] = [w for w in yaml.safe_load(DEPLOYED.read_text())["webhooks"] if w["name"] == "validate.routewarden.dev"]
    config["webhooks"][0].update(rules=shipped["rules"], matchConditions=shipped["matchConditions"])
    return config


def route(name: str, *, infra: str, section: str, hostname: str) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "spec": {"parentRefs": [{"name": "shared", "namespace": infra, "sectionName": section}],
                     "hostnames": [hostname], "rules": [{"backendRefs": [{"name": "echo", "port": 8080}]}]}}


async def gone(cluster: Cluster, namespace: str, name: str) -> bool:
    try:
        await asyncio.to_thread(cluster.custom.get_namespaced_custom_object, GATEWAY_GROUP,
                                cluster.versions["HTTPRoute"], namespace, "httproutes", name)
    except ApiException as exc:
        return exc.status == 404
    return False


async def test_a_route_its_gateway_no_longer_admits_can_be_labelled_finalized_and_deleted(
    api_client: Any, tmp_path: Path
) -> None:
    """Each write that does not make the route worse succeeds; a move to a refusing parent is denied."""
    cluster = Cluster(api_client)
    admission = k8s.AdmissionregistrationV1Api(api_client)
    run = uuid.uuid4().hex[:8]
    infra, apples, cherries = (f"rw-e2e-{run}-{n}" for n in ("infra", "apples", "cherries"))
    webhook_name = f"routewarden-e2e-ratchet-{run}"
    certs = webhook_files(tmp_path, POLICY.format(run=run, infra=infra))
    created: list[str] = []
    listeners = [
        {"name": "http", "port": 80, "protocol": "HTTP", "hostname": "*.example.com",
         "allowedRoutes": {"namespaces": {"from": "Selector", "selector": {
             "matchExpressions": [{"key": "team", "operator": "Exists"}]}}}},
        {"name": "private", "port": 8080, "protocol": "HTTP", "hostname": "*.example.com"},  # from: Same
    ]
    try:
        for ns in (infra, apples, cherries):
            await cluster.namespace(ns, run)
            created.append(ns)
        await asyncio.to_thread(cluster.core.patch_namespace, apples, {"metadata": {"labels": {"team": "apples"}}})
        await cluster.create("Gateway", infra, {"metadata": {"name": "shared"},
                                                "spec": {"gatewayClassName": f"e2e-{run}", "listeners": listeners}})
        async with routewarden(api_client, tmp_path / "policies", certs) as (port, state):
            await eventually(lambda: state.gateway(infra, "shared") is not None, "the Gateway in the view")
            await asyncio.to_thread(admission.create_validating_webhook_configuration,
                                    deployed_webhook(webhook_name, run, port, certs))
            body = denial(await first_refusal(cluster, cherries, route(
                "outsider", infra=infra, section="http", hostname=f"outsider-{run}.example.com")))
            if "failed calling webhook" in body.get("message", ""):
                pytest.skip(f"the API server cannot reach the webhook at {HOST}:{port}: {body['message']}")
            assert body["reason"] == "NotAllowedByListeners", body

            echo = f"echo-{run}.example.com"
            await cluster.create("HTTPRoute", apples, route("echo", infra=infra, section="http", hostname=echo))
            await cluster.create("HTTPRoute", apples, route(
                "moved", infra=infra, section="http", hostname=f"moved-{run}.example.com"))

            # The platform team narrows the listener: apples' routes are no longer admitted.
            narrowed = [{**listeners[0], "allowedRoutes": {"namespaces": {"from": "Same"}}}, listeners[1]]
            await cluster.patch("Gateway", infra, "shared", {"spec": {"listeners": narrowed}})
            await eventually(lambda: state.gateway(infra, "shared").listeners[0].allowed_from == "Same",
                             "the narrowed Gateway in the view")

            # Metadata writes, a deletion and the finalizer's removal all go through.
            await cluster.patch("HTTPRoute", apples, "echo", {"metadata": {"labels": {
                "argocd.argoproj.io/instance": "fruits"}}})
            await cluster.patch("HTTPRoute", apples, "echo", {"metadata": {"finalizers": ["example.com/cleanup"]}})
            await cluster.delete("HTTPRoute", apples, "echo")
            assert not await gone(cluster, apples, "echo"), "the finalizer keeps the route Terminating"
            await cluster.patch("HTTPRoute", apples, "echo", {"metadata": {"finalizers": None}})
            assert await gone(cluster, apples, "echo"), "the route is gone once its finalizer is removed"

            # Moving the other route to a parent that refuses it too is new: denied.
            with pytest.raises(ApiException) as moved:
                await cluster.patch("HTTPRoute", apples, "moved", {"spec": {"parentRefs": [
                    {"name": "shared", "namespace": infra, "sectionName": "private"}]}})
            assert moved.value.status == 403
            assert denial(moved.value)["reason"] == "NotAllowedByListeners", denial(moved.value)
            assert "sectionName private" in denial(moved.value)["message"]

        # routewarden is down; the webhook still fails closed for what its rules read...
        with pytest.raises(ApiException) as down:
            await cluster.patch("Gateway", infra, "shared", {"metadata": {"labels": {"touched": "yes"}}})
        assert "failed calling webhook" in (down.value.body or ""), down.value.body
        # ... but a route DELETE is never sent to it.
        await cluster.delete("HTTPRoute", apples, "moved")
        assert await gone(cluster, apples, "moved")
    finally:
        with contextlib.suppress(ApiException):
            await asyncio.to_thread(admission.delete_validating_webhook_configuration, webhook_name)
        for ns in created:
            await cluster.delete_namespace(ns)
