"""The fake kube-apiserver answers the real client as a kube-apiserver would."""

from __future__ import annotations

import json
from collections.abc import Iterator

import kubernetes.client
import pytest
from kubeapi import FakeKubeAPI
from kubernetes.client.exceptions import ApiException
from ssa_transcript import EXPECTED, transcript

WEBHOOKS = "admissionregistration.k8s.io"


@pytest.fixture
def client() -> Iterator[tuple[FakeKubeAPI, kubernetes.client.ApiClient]]:
    """A fake on its own loop thread, so the blocking client can be called directly."""
    api = FakeKubeAPI(history=10)
    api.register_defaults()
    with api.in_thread(), kubernetes.client.ApiClient(kubernetes.client.Configuration(host=api.url)) as c:
        yield api, c


def test_secrets_can_be_created_read_updated_patched_and_deleted(client) -> None:
    """Core CRUD round-trips, with conflicts on stale updates and both patch flavours."""
    api, c = client
    core = kubernetes.client.CoreV1Api(c)
    created = core.create_namespaced_secret("system", {"metadata": {"name": "tls"}, "data": {"a": "MQ=="}})
    assert created.metadata.namespace == "system" and created.metadata.resource_version
    stale_body = {"metadata": {"name": "tls", "resourceVersion": created.metadata.resource_version},
                  "data": {"a": "Mg=="}}
    core.replace_namespaced_secret("tls", "system", stale_body)
    with pytest.raises(ApiException) as conflict:
        core.replace_namespaced_secret("tls", "system", stale_body)
    assert conflict.value.status == 409
    core.patch_namespaced_secret("tls", "system", {"data": {"b": "Mw=="}})
    assert core.read_namespaced_secret("tls", "system").data == {"a": "Mg==", "b": "Mw=="}
    core.delete_namespaced_secret("tls", "system")
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_secret("tls", "system")
    assert missing.value.status == 404 and api.get("Secret", "system", "tls") is None


def test_webhook_configurations_accept_json_patches(client) -> None:
    """A caBundle can be injected into a webhook configuration with a JSON patch."""
    api, c = client
    admission = kubernetes.client.AdmissionregistrationV1Api(c)
    admission.create_validating_webhook_configuration({
        "metadata": {"name": "routewarden"},
        "webhooks": [{"name": "v.routewarden.dev", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                      "clientConfig": {"service": {"namespace": "system", "name": "routewarden"}}}],
    })
    admission.patch_validating_webhook_configuration(
        "routewarden", [{"op": "add", "path": "/webhooks/0/clientConfig/caBundle", "value": "Q0E="}]
    )
    stored = api.get("ValidatingWebhookConfiguration", "", "routewarden")
    assert stored["webhooks"][0]["clientConfig"]["caBundle"] == "Q0E="


def test_lists_are_paginated_and_expired_continue_tokens_are_gone(client) -> None:
    """limit/continue pages through a consistent list; compaction expires the token with 410."""
    api, c = client
    core = kubernetes.client.CoreV1Api(c)
    for i in range(5):
        api.create("Namespace", {"metadata": {"name": f"ns-{i}"}})
    first = core.list_namespace(limit=2)
    second = core.list_namespace(limit=2, _continue=first.metadata._continue)
    assert [n.metadata.name for n in first.items + second.items] == ["ns-0", "ns-1", "ns-2", "ns-3"]
    api.compact()
    with pytest.raises(ApiException) as gone:
        core.list_namespace(limit=2, _continue=second.metadata._continue)
    assert gone.value.status == 410


def test_server_side_apply_is_answered_as_kube_apiserver_answers_it(client) -> None:
    """The recorded story of conflicts, preconditions, shared ownership, dry runs and force (checked against a
    real kube-apiserver by tests/e2e/test_ssa_e2e.py)."""
    api, c = client
    api.create("Namespace", {"metadata": {"name": "ssa"}})
    assert transcript(c, "ssa") == EXPECTED


def test_a_field_selected_watch_sees_objects_enter_and_leave_the_selection(client) -> None:
    """A Service that stops being a LoadBalancer is DELETED (as last matched, at the new resourceVersion) for a
    watch on spec.type=LoadBalancer, and ADDED when it becomes one again."""
    api, c = client
    core = kubernetes.client.CoreV1Api(c)
    listed = core.list_service_for_all_namespaces(field_selector="spec.type=LoadBalancer")
    api.create("Service", {"metadata": {"namespace": "a", "name": "lb"}, "spec": {"type": "LoadBalancer"}})
    service = api.get("Service", "a", "lb")
    service["spec"]["type"] = "ClusterIP"
    api.update("Service", service)
    service = api.get("Service", "a", "lb")
    service["spec"]["type"] = "LoadBalancer"
    api.update("Service", service)
    api.create("Service", {"metadata": {"namespace": "a", "name": "plain"}, "spec": {"type": "ClusterIP"}})
    resp = core.list_service_for_all_namespaces(
        field_selector="spec.type=LoadBalancer", watch=True, resource_version=listed.metadata.resource_version,
        timeout_seconds=1, _preload_content=False)
    events = [json.loads(line) for line in resp.data.splitlines() if line.strip()]
    assert [(e["type"], e["object"]["spec"]["type"]) for e in events] == [
        ("ADDED", "LoadBalancer"), ("DELETED", "LoadBalancer"), ("ADDED", "LoadBalancer")]
    assert int(events[1]["object"]["metadata"]["resourceVersion"]) > int(events[0]["object"]["metadata"]["resourceVersion"])
