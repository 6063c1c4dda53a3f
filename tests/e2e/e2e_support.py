"""Shared pieces of the end-to-end tests (a module, not a conftest: tests/conftest.py is
imported by name elsewhere, and two modules called conftest would clash): a client for the cluster in KUBECONFIG (or a skip
saying why there is none), and blocking client calls run off the event loop."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from conftest import eventually as poll

from webhook.certs import CertificateFiles, write_certificates
from webhook.policy.loader import PolicyStore
from webhook.runtime import Runtime
from webhook.server import create_app, start
from webhook.state.informer import InformerConfig, InformerStats, run_informers
from webhook.state.kinds import GATEWAY_GROUP, KINDS_BY_NAME, WatchedKind
from webhook.state.store import ClusterState
from webhook.tls import CertificateReloader, server_context

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client as k8s
from kubernetes import config as kubeconfig
from kubernetes.client.exceptions import ApiException

KINDS = tuple(KINDS_BY_NAME[k] for k in ("Namespace", "Gateway", "HTTPRoute", "ReferenceGrant"))
WAIT = 60.0
# The address kube-apiserver dials; override when the API server reaches this machine elsewhere.
HOST = os.environ.get("ROUTEWARDEN_E2E_WEBHOOK_HOST", "127.0.0.1")
CONFIG = InformerConfig(watch_timeout=60, backoff_max=5, unavailable_retry=5)


def _skip(reason: str) -> None:
    pytest.skip(f"end-to-end tests need a cluster: {reason}")


def cluster_client() -> Any:
    """A client for the cluster in KUBECONFIG, or a skip saying why there is none."""
    path = os.environ.get("KUBECONFIG")
    if not path:
        _skip("KUBECONFIG is not set")
    try:
        client = kubeconfig.new_client_from_config(config_file=path.split(os.pathsep)[0])
    except Exception as exc:  # noqa: BLE001 - any failure here means "no usable cluster"
        _skip(f"cannot load KUBECONFIG {path}: {exc}")
    try:
        k8s.VersionApi(client).get_code(_request_timeout=5)
    except Exception as exc:  # noqa: BLE001
        _skip(f"the cluster in {path} is not reachable: {exc}")
    crds = k8s.ApiextensionsV1Api(client)
    for plural in ("gateways", "httproutes", "referencegrants"):
        try:
            crds.read_custom_resource_definition(f"{plural}.{GATEWAY_GROUP}", _request_timeout=10)
        except ApiException as exc:
            _skip(f"the Gateway API CRD {plural}.{GATEWAY_GROUP} is not readable (HTTP {exc.status})")
    return client


async def require_crd(client: Any, kind: str) -> None:
    """Skip, saying why, when the cluster does not serve the Gateway API CRD of ``kind``
    (the standard CRDs ``cluster_client`` checks, or one such as ListenerSet that older releases lack)."""
    plural = KINDS_BY_NAME[kind].plural
    try:
        await asyncio.to_thread(k8s.ApiextensionsV1Api(client).read_custom_resource_definition,
                                f"{plural}.{GATEWAY_GROUP}", _request_timeout=10)
    except ApiException as exc:
        _skip(f"the {kind} CRD is not readable (HTTP {exc.status})")


def webhook_files(directory: Path, policies: str, *, name: str = "tenancy.yaml") -> CertificateFiles:
    """Under ``directory``: serving certificates for the webhook's address, made by the
    project's own certificate code, and ``policies/<name>`` holding ``policies``."""
    certs = CertificateFiles(directory / "certs")
    write_certificates(certs.directory, hostnames=["localhost"], ips=[HOST])
    (directory / "policies").mkdir()
    (directory / "policies" / name).write_text(policies)
    return certs


@pytest.fixture(scope="module", name="api_client")
def api_client_fixture() -> Any:
    """The cluster in KUBECONFIG (import this fixture into an e2e module to use it)."""
    client = cluster_client()
    yield client
    client.close()


def served_version(client: Any, kind: str) -> str:
    """The first of the kind's versions the cluster serves (as the informer chooses)."""
    apis = k8s.CustomObjectsApi(client)
    for version in KINDS_BY_NAME[kind].versions:
        try:
            resources = apis.get_api_resources(GATEWAY_GROUP, version, _request_timeout=10)
        except ApiException as exc:
            if exc.status == 404:
                continue
            raise
        if any(r.name == KINDS_BY_NAME[kind].plural for r in resources.resources):
            return version
    pytest.fail(f"{kind} is served in none of {KINDS_BY_NAME[kind].versions}")


async def eventually(check: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """The suite's polling helper, with the patience a real cluster needs."""
    await poll(check, what, timeout=timeout, interval=0.1)


@contextlib.asynccontextmanager
async def informing(client: Any, state: ClusterState) -> AsyncIterator[InformerStats]:
    stats = InformerStats()
    task = asyncio.create_task(run_informers(state, api_client=client, kinds=KINDS, stats=stats, config=CONFIG))
    await asyncio.sleep(0)
    try:
        yield stats
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Cluster:
    """Blocking client calls, run off the loop so the informer's callbacks keep flowing."""

    def __init__(self, client: Any) -> None:
        self.core = k8s.CoreV1Api(client)
        self.custom = k8s.CustomObjectsApi(client)
        self.versions = {kind: served_version(client, kind) for kind in ("Gateway", "HTTPRoute", "ReferenceGrant")}

    async def namespace(self, name: str, run_id: str) -> None:
        body = {"metadata": {"name": name, "labels": {"routewarden.dev/e2e": run_id}}}
        await asyncio.to_thread(self.core.create_namespace, body)

    async def delete_namespace(self, name: str) -> None:
        with contextlib.suppress(ApiException):
            await asyncio.to_thread(self.core.delete_namespace, name)

    async def create(self, kind: str, namespace: str, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        version = self.versions[kind]
        obj = {"apiVersion": f"{GATEWAY_GROUP}/{version}", "kind": kind, **obj}
        options = {"dry_run": "All"} if dry_run else {}
        return await asyncio.to_thread(
            self.custom.create_namespaced_custom_object, GATEWAY_GROUP, version, namespace,
            KINDS_BY_NAME[kind].plural, obj, **options,
        )

    async def delete_quietly(self, kind: str, namespace: str, name: str) -> None:
        with contextlib.suppress(ApiException):
            await self.delete(kind, namespace, name)

    async def patch(self, kind: str, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return await asyncio.to_thread(
            self.custom.patch_namespaced_custom_object, GATEWAY_GROUP, self.versions[kind], namespace,
            KINDS_BY_NAME[kind].plural, name, patch,
        )

    async def delete(self, kind: str, namespace: str, name: str) -> None:
        await asyncio.to_thread(
            self.custom.delete_namespaced_custom_object, GATEWAY_GROUP, self.versions[kind], namespace,
            KINDS_BY_NAME[kind].plural, name,
        )


def denial(exc: ApiException) -> dict[str, Any]:
    """The Status body kube-apiserver returns for a webhook denial."""
    try:
        return json.loads(exc.body or "{}")
    except ValueError:
        return {"message": exc.body or ""}


async def first_refusal(cluster: Cluster, namespace: str, obj: dict[str, Any], *, kind: str = "HTTPRoute") -> ApiException:
    """The API server's refusal of a dry-run create, waiting for it to load a new webhook configuration."""
    for _ in range(30):
        try:
            await cluster.create(kind, namespace, obj, dry_run=True)
        except ApiException as exc:
            if exc.status == 403 or "webhook" in (exc.body or ""):
                return exc
            raise  # not an admission answer: a real error of the API server
        await asyncio.sleep(1)
    pytest.fail(f"kube-apiserver admitted the {kind} for 30 s: the webhook configuration was never consulted")


@contextlib.asynccontextmanager
async def routewarden(
    api_client: Any, policies: Path, certs: CertificateFiles, *, kinds: Iterable[WatchedKind] = KINDS
) -> AsyncIterator[tuple[int, ClusterState]]:
    """The production wiring on a free port: TLS, policies, and the informer on this cluster."""
    kinds = tuple(kinds)
    state = ClusterState()
    state.expect(k.kind for k in kinds)
    store = PolicyStore(policies)
    assert store.reload(), store.errors
    runtime = Runtime(policies=store, state=state, require_sync=True)

    async def informer() -> None:
        await run_informers(state, api_client=api_client, kinds=kinds, config=CONFIG)

    context = server_context(certs.cert, certs.key)
    app = create_app(runtime, certificates=CertificateReloader(context, certs.cert, certs.key),
                     policy_interval=None, informer=informer)
    runner, port = await start(app, host=HOST, port=0, ssl_context=context, access_log=False)
    try:
        await eventually(lambda: runtime.readiness()[0], "routewarden ready (policies loaded, view synced)")
        yield port, state
    finally:
        await runner.cleanup()


def validating_webhook(name: str, run: str, port: int, certs: CertificateFiles, *, resources: list[str]) -> dict[str, Any]:
    """A ValidatingWebhookConfiguration calling routewarden by URL for the namespaces of one run."""
    return {
        "metadata": {"name": name},
        "webhooks": [{
            "name": f"validate.{run}.e2e.routewarden.dev",
            "clientConfig": {"url": f"https://{HOST}:{port}/validate",
                             "caBundle": base64.b64encode(certs.ca_cert.read_bytes()).decode()},
            "rules": [{"apiGroups": [GATEWAY_GROUP], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE", "DELETE"],
                       "resources": resources, "scope": "Namespaced"}],
            "namespaceSelector": {"matchLabels": {"routewarden.dev/e2e": run}},
            "matchPolicy": "Equivalent", "sideEffects": "None", "admissionReviewVersions": ["v1"],
            "failurePolicy": "Fail", "timeoutSeconds": 5,
        }],
    }


def impersonating(client: Any, username: str) -> Any:
    """A CoreV1Api acting as ``username`` (``Impersonate-User``, as ``kubectl --as``; the harness admin may)."""
    return k8s.CoreV1Api(k8s.ApiClient(client.configuration, header_name="Impersonate-User", header_value=username))


async def grant_services(client: Any, namespace: str, subject: dict[str, str]) -> None:
    """Let ``subject`` (an RBAC subject) create and read Services in ``namespace``."""
    rbac = k8s.RbacAuthorizationV1Api(client)
    name = f"services-{subject['name'].replace(':', '-')}"[:63]
    await asyncio.to_thread(rbac.create_namespaced_role, namespace, {
        "metadata": {"name": name},
        "rules": [{"apiGroups": [""], "resources": ["services"], "verbs": ["create", "get", "update", "patch"]}]})
    await asyncio.to_thread(rbac.create_namespaced_role_binding, namespace, {
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [subject]})
