"""The fake kube-apiserver answers the real client as a kube-apiserver would."""

from __future__ import annotations

from collections.abc import Iterator

import kubernetes.client
import pytest
from kubeapi import FakeKubeAPI
from kubernetes.client.exceptions import ApiException

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
