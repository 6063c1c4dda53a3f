"""The informer against a real cluster (``KUBECONFIG``) with the Gateway API CRDs installed.

Creates two uniquely named namespaces (labelled ``routewarden.dev/e2e``), a Gateway, an
HTTPRoute and a ReferenceGrant, and checks that the cluster view sees them appear, change
and go away. Everything created is deleted in ``finally``; if a run is killed, clean up
with ``kubectl delete ns -l routewarden.dev/e2e``.

Run with: ``KUBECONFIG=~/.kube/config pytest -m e2e tests/e2e``.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from e2e_support import (
    GATEWAY_GROUP,
    Cluster,
    api_client_fixture,  # noqa: F401 - provides the api_client fixture
    eventually,
    informing,
)

from webhook.state.store import ClusterState

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


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
