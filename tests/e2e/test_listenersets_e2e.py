"""ListenerSets through a real kube-apiserver: a conflicting tenant set is refused at apply time.

The webhook runs as in ``test_webhook_e2e.py`` (real TLS, the informer watching the
cluster, a ValidatingWebhookConfiguration by ``url`` and ``caBundle`` scoped to the
namespaces of this run) and also watches ListenerSets. Through the API server: a set
whose only listener is TCP on the Gateway's HTTP port is refused (ProtocolConflict); a
team's set that conflicts with nothing is created and a route attaches through it; a
second team duplicating that listener is refused (ListenersNotValid), and so is a set
taking the first team's hostname on another port (a hijack, HostnameConflict).

Run with: ``KUBECONFIG=~/.kube/config pytest -m e2e tests/e2e``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path
from typing import Any

import pytest
from e2e_support import (
    GATEWAY_GROUP,
    HOST,
    KINDS,
    Cluster,
    api_client_fixture,  # noqa: F401 - provides the api_client fixture
    denial,
    eventually,
    first_refusal,
    require_crd,
    routewarden,
    served_version,
    validating_webhook,
    webhook_files,
)
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from webhook.state.kinds import KINDS_BY_NAME

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

POLICY = """\
apiVersion: routewarden.dev/v1alpha1
kind: TenancyPolicy
metadata: {{name: e2e-{run}}}
spec:
  match:
    gateways: [{{namespace: {infra}, name: shared}}]
  attachment: {{mirrorListeners: true}}
  hostnames: {{unique: true}}
  references: {{requireReferenceGrant: true}}
"""


def listener_set(name: str, infra: str, *listeners: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "spec": {"parentRef": {"name": "shared", "namespace": infra}, "listeners": list(listeners)}}


async def test_conflicting_listenersets_are_refused_and_a_good_one_serves_routes(api_client: Any, tmp_path: Path) -> None:
    """Through kube-apiserver: ProtocolConflict and a duplicate listener refused (ListenersNotValid), a hostname
    hijack through a set refused (HostnameConflict); a set that conflicts with nothing is created and a route
    attaches through it."""
    await require_crd(api_client, "ListenerSet")
    cluster = Cluster(api_client)
    cluster.versions["ListenerSet"] = served_version(api_client, "ListenerSet")
    admission = k8s.AdmissionregistrationV1Api(api_client)
    run = uuid.uuid4().hex[:8]
    infra, first, second = (f"rw-e2e-{run}-{n}" for n in ("infra", "first", "second"))
    hostname = f"echo-{run}.example.com"
    webhook_name = f"routewarden-e2e-listenersets-{run}"
    certs = webhook_files(tmp_path, POLICY.format(run=run, infra=infra))
    created: list[str] = []
    try:
        for ns in (infra, first, second):
            await cluster.namespace(ns, run)
            created.append(ns)
        for ns in (first, second):
            await asyncio.to_thread(cluster.core.patch_namespace, ns, {"metadata": {"labels": {"gateway-tenant": run}}})
        await cluster.create("Gateway", infra, {
            "metadata": {"name": "shared"},
            "spec": {
                "gatewayClassName": f"routewarden-e2e-{run}",
                "allowedListeners": {"namespaces": {"from": "Selector",
                                                    "selector": {"matchLabels": {"gateway-tenant": run}}}},
                "listeners": [{"name": "http", "port": 80, "protocol": "HTTP", "hostname": "*.example.com",
                               "allowedRoutes": {"namespaces": {"from": "All"}}}],
            },
        })
        kinds = (*KINDS, KINDS_BY_NAME["ListenerSet"])
        async with routewarden(api_client, tmp_path / "policies", certs, kinds=kinds) as (port, state):
            await eventually(lambda: state.gateway(infra, "shared") is not None, "the Gateway in the view")
            await asyncio.to_thread(admission.create_validating_webhook_configuration, validating_webhook(
                webhook_name, run, port, certs, resources=["httproutes", "gateways", "referencegrants", "listenersets"]))

            # TCP on the Gateway's HTTP port: the first refusal also proves the API server reaches us.
            raw = listener_set("raw", infra, {"name": "raw", "port": 80, "protocol": "TCP"})
            refused = await first_refusal(cluster, first, raw, kind="ListenerSet")
            body = denial(refused)
            if "failed calling webhook" in body.get("message", ""):
                pytest.skip(f"the API server cannot reach the webhook at {HOST}:{port}: {body['message']}")
            assert refused.status == 403, body
            assert body["reason"] == "ListenersNotValid" and "ProtocolConflict" in body["message"], body

            # The first team's set conflicts with nothing: created, and a route attaches through it.
            echo = {"name": "echo", "port": 80, "protocol": "HTTP", "hostname": hostname}
            await cluster.create("ListenerSet", first, listener_set("team", infra, echo))
            await eventually(lambda: state.listenerset(first, "team") is not None, "the ListenerSet in the view")
            through_set = {"kind": "ListenerSet", "group": GATEWAY_GROUP, "name": "team", "sectionName": "echo"}
            await cluster.create("HTTPRoute", first, {
                "metadata": {"name": "echo"},
                "spec": {"parentRefs": [through_set], "hostnames": [hostname],
                         "rules": [{"backendRefs": [{"name": "echo", "port": 8080}]}]},
            })
            # The webhook judged attachment through the set: a name its listener does not serve is refused.
            with pytest.raises(ApiException) as elsewhere:
                await cluster.create("HTTPRoute", first, {
                    "metadata": {"name": "elsewhere"},
                    "spec": {"parentRefs": [through_set], "hostnames": [f"other-{run}.example.com"]},
                })
            assert denial(elsewhere.value)["reason"] == "NoMatchingListenerHostname"

            # Another team duplicating that listener: Conflicted, the set has nothing left to serve.
            with pytest.raises(ApiException) as duplicate:
                await cluster.create("ListenerSet", second, listener_set("dup", infra, echo))
            body = denial(duplicate.value)
            assert "ListenersNotValid" in body["message"] and f"ListenerSet {first}/team" in body["message"], body

            # The same name on another port is no conflict, but it is the first team's name: a hijack.
            with pytest.raises(ApiException) as hijack:
                await cluster.create("ListenerSet", second, listener_set(
                    "steal", infra, {**echo, "name": "steal", "port": 8080}))
            body = denial(hijack.value)
            assert body["reason"] == "HostnameConflict" and f"namespace {first}" in body["message"], body

            # Deleting the first team's set is allowed (the route it detaches is only named).
            await cluster.delete("ListenerSet", first, "team")
            await eventually(lambda: state.listenerset(first, "team") is None, "the ListenerSet gone from the view")
    finally:
        with contextlib.suppress(ApiException):
            await asyncio.to_thread(admission.delete_validating_webhook_configuration, webhook_name)
        for ns in created:
            await cluster.delete_namespace(ns)
