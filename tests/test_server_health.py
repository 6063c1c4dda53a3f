"""Liveness, readiness and metrics endpoints."""

from __future__ import annotations

from typing import Any

from conftest import review_body

from webhook.handlers import LIFECYCLE
from webhook.policy.loader import PolicyStore
from webhook.runtime import Runtime
from webhook.server import create_app
from webhook.state.store import ClusterState


async def test_healthz_answers_while_the_loop_runs(client: Any) -> None:
    """Liveness does not depend on the cluster or the policies."""
    resp = await client.get("/healthz")
    assert resp.status == 200 and await resp.text() == "ok\n"


async def test_readyz_waits_for_the_cluster_view_to_sync(aiohttp_client: Any) -> None:
    """Not ready (503, naming the kinds) until every expected kind has been listed."""
    state = ClusterState(expected_kinds=["Gateway", "HTTPRoute"])
    client = await aiohttp_client(create_app(Runtime(policies=PolicyStore(), state=state), policy_interval=None))
    resp = await client.get("/readyz")
    assert resp.status == 503
    body = await resp.json()
    assert body["ready"] is False and "Gateway, HTTPRoute" in body["problems"][0]
    state.mark_synced("Gateway")
    state.mark_synced("HTTPRoute")
    resp = await client.get("/readyz")
    assert resp.status == 200 and (await resp.json()) == {"ready": True, "problems": []}


async def test_readyz_is_false_while_policies_failed_to_load(aiohttp_client: Any, tmp_path: Any) -> None:
    """A policy directory that does not exist means no policy set: not ready."""
    policies = PolicyStore(tmp_path / "missing")
    policies.reload()
    runtime = Runtime(policies=policies, state=ClusterState(), require_sync=False)
    client = await aiohttp_client(create_app(runtime, policy_interval=None))
    resp = await client.get("/readyz")
    assert resp.status == 503
    assert "policies not loaded" in (await resp.json())["problems"][0]


async def test_readyz_turns_false_when_shutdown_starts(client: Any) -> None:
    """Once stopping, readiness fails so endpoints drop the pod; answers close their connection."""
    assert (await client.get("/readyz")).status == 200
    client.app[LIFECYCLE].stopping = True
    resp = await client.get("/readyz")
    assert resp.status == 503 and "shutting down" in (await resp.json())["problems"]
    review = await client.post("/validate", data=review_body("httproute-create.validate"),
                               headers={"Content-Type": "application/json"})
    assert review.status == 200 and review.headers["Connection"] == "close"


async def test_metrics_count_the_reviews_answered(client: Any) -> None:
    """/metrics exposes the telemetry registry, including a review just answered."""
    await client.post("/validate", data=review_body("httproute-create.validate"),
                      headers={"Content-Type": "application/json"})
    resp = await client.get("/metrics", headers={"Accept": "text/plain"})
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    text = await resp.text()
    assert 'routewarden_admission_requests_total{' in text and 'webhook="validate"' in text


async def test_metrics_negotiate_openmetrics_when_asked(client: Any) -> None:
    """A scraper asking for OpenMetrics gets it, with its content type."""
    resp = await client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
    assert (await resp.text()).rstrip().endswith("# EOF")
