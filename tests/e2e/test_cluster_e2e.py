"""The informer against a real cluster (``KUBECONFIG``) with the Gateway API CRDs installed.

Creates two uniquely named namespaces (labelled ``routewarden.dev/e2e``), a Gateway, an
HTTPRoute and a ReferenceGrant, and checks that the cluster view sees them appear, change
and go away. Everything created is deleted in ``finally``; if a run is killed, clean up
with ``kubectl delete ns -l routewarden.dev/e2e``.

Run with: ``KUBECONFIG=~/.kube/config pytest -m e2e tests/e2e``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from webhook.state.informer import InformerConfig, InformerStats, run_informers
from webhook.state.kinds import GATEWAY_GROUP, KINDS_BY_NAME
from webhook.state.store import ClusterState

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client as k8s
from kubernetes import config as kubeconfig
from kubernetes.client.exceptions import ApiException

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

KINDS = tuple(KINDS_BY_NAME[k] for k in ("Namespace", "Gateway", "HTTPRoute", "ReferenceGrant"))
WAIT = 60.0
CONFIG = InformerConfig(watch_timeout=60, backoff_max=5, unavailable_retry=5)


def _skip(reason: str) -> None:
    pytest.skip(f"end-to-end tests need a cluster: {reason}")


@pytest.fixture(scope="module")
def api_client() -> Any:
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
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for: {what}")
        await asyncio.sleep(0.1)


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

    async def create(self, kind: str, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
        version = self.versions[kind]
        obj = {"apiVersion": f"{GATEWAY_GROUP}/{version}", "kind": kind, **obj}
        return await asyncio.to_thread(
            self.custom.create_namespaced_custom_object, GATEWAY_GROUP, version, namespace,
            KINDS_BY_NAME[kind].plural, obj,
        )

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


async def test_the_view_follows_gateway_api_objects_in_a_real_cluster(api_client: Any) -> None:
    """Objects created before and after the first list appear, change and disappear in the view."""
    cluster = Cluster(api_client)
    run_id = uuid.uuid4().hex[:8]
    infra, apples = f"rw-e2e-{run_id}-infra", f"rw-e2e-{run_id}-apples"
    hostname = f"apples-{run_id}.example.com"
    try:
        await cluster.namespace(infra, run_id)
        await cluster.namespace(apples, run_id)
        # Listed: the Gateway exists before the informer starts.
        await cluster.create("Gateway", infra, {
            "metadata": {"name": "shared"},
            "spec": {"gatewayClassName": f"routewarden-e2e-{run_id}", "listeners": [
                {"name": "http", "port": 80, "protocol": "HTTP", "allowedRoutes": {"namespaces": {"from": "All"}}},
            ]},
        })
        state = ClusterState()
        async with informing(api_client, state) as stats:
            await eventually(lambda: state.synced, "the view synced")
            assert state.namespace_labels(apples) is not None
            assert state.gateway(infra, "shared") is not None

            # Watched: route and grant created after the list.
            await cluster.create("HTTPRoute", apples, {
                "metadata": {"name": "web"},
                "spec": {"parentRefs": [{"name": "shared", "namespace": infra}], "hostnames": [hostname]},
            })
            await cluster.create("ReferenceGrant", infra, {
                "metadata": {"name": "from-apples"},
                "spec": {"from": [{"group": GATEWAY_GROUP, "kind": "HTTPRoute", "namespace": apples}],
                         "to": [{"group": "", "kind": "Service"}]},
            })
            await eventually(lambda: [r.name for r in state.routes_attached_to(infra, "shared")] == ["web"],
                             "the route attached to the gateway in the view")
            await eventually(lambda: len(state.reference_grants(infra)) == 1, "the grant in the view")
            assert [r.namespace for r in state.routes_with_hostname(hostname)] == [apples]

            # Modified: the view follows, at the cluster's resourceVersion.
            patched = await cluster.patch("HTTPRoute", apples, "web", {"spec": {"hostnames": [f"www.{hostname}"]}})
            rv = patched["metadata"]["resourceVersion"]
            await eventually(
                lambda: (state.get("HTTPRoute", apples, "web") or {}).get("metadata", {}).get("resourceVersion") == rv,
                "the patched route in the view",
            )
            assert state.routes_with_hostname(hostname) == ()

            # Deleted: gone from the view, indexes included.
            await cluster.delete("HTTPRoute", apples, "web")
            await cluster.delete("ReferenceGrant", infra, "from-apples")
            await eventually(lambda: state.get("HTTPRoute", apples, "web") is None, "the route deleted")
            await eventually(lambda: state.reference_grants(infra) == (), "the grant deleted")
            assert state.routes_attached_to(infra, "shared") == ()
            assert all(s.errors == 0 for s in stats.kinds.values()), stats
    finally:
        await cluster.delete_namespace(apples)
        await cluster.delete_namespace(infra)
