"""The informer against a fake kube-apiserver, through the real ``kubernetes`` client.

Each test drives the server into a situation a cluster produces (expired
resourceVersions, dropped streams, 5xx, CRDs installed late) and then checks that the
view converges to the server's truth: the same keys, at the same resourceVersions.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import kubernetes.client
import pytest
from conftest import eventually
from kubeapi import FakeKubeAPI

from webhook.state.informer import InformerConfig, InformerStats, run_informers
from webhook.state.kinds import KINDS_BY_NAME
from webhook.state.store import ClusterState

FAST = InformerConfig(
    watch_timeout=4,
    page_size=2,
    backoff_initial=0.05,
    backoff_max=0.2,
    unavailable_retry=0.2,
    connect_timeout=2,
    request_timeout=5,
    read_margin=2,
    stop_timeout=3,
)
# For tests that act on the watches open at one moment: no watch ends on its own during
# the test (with FAST's 2-4 s watches, a bookmark or a cut can fall between two of them).
STEADY = dataclasses.replace(FAST, watch_timeout=120)
KINDS = tuple(KINDS_BY_NAME[k] for k in ("Namespace", "HTTPRoute", "ReferenceGrant"))
WAIT = 5.0


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def route(ns: str, name: str, *hostnames: str) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"namespace": ns, "name": name},
        "spec": {"parentRefs": [{"name": "shared", "namespace": "infra"}], "hostnames": list(hostnames)},
    }


def view(state: ClusterState, kind: str) -> dict[tuple[str, str], str]:
    """(namespace, name) -> resourceVersion of what the view holds."""
    return {
        (o["metadata"].get("namespace", ""), o["metadata"]["name"]): o["metadata"]["resourceVersion"]
        for o in state.objects(kind)
    }


async def converged(api: FakeKubeAPI, state: ClusterState, *kinds: str) -> None:
    for kind in kinds or ("Namespace", "HTTPRoute"):
        await eventually(lambda k=kind: view(state, k) == api.truth(k), f"{kind} view == server truth", timeout=WAIT)


@pytest.fixture
async def api() -> AsyncIterator[FakeKubeAPI]:
    async with FakeKubeAPI(history=100) as server:
        server.register_watched()
        server.create("Namespace", namespace("infra", team="platform"))
        server.create("Namespace", namespace("apples", team="apples"))
        server.create("Namespace", namespace("bananas", team="bananas"))
        server.create("HTTPRoute", route("apples", "web", "apples.example.com"))
        server.create("HTTPRoute", route("bananas", "web", "bananas.example.com"))
        server.create("HTTPRoute", route("bananas", "api", "api.bananas.example.com"))
        yield server


@contextlib.asynccontextmanager
async def informing(
    api: FakeKubeAPI,
    state: ClusterState,
    *,
    kinds=KINDS,
    on_event=None,
    config: InformerConfig = FAST,
    token: str = "",
) -> AsyncIterator[InformerStats]:
    """run_informers as the server runs it: a task, cancelled at the end."""
    stats = InformerStats()
    configuration = kubernetes.client.Configuration(host=api.url)
    if token:
        configuration.api_key = {"authorization": token}
        configuration.api_key_prefix = {"authorization": "Bearer"}
    client = kubernetes.client.ApiClient(configuration)
    task = asyncio.create_task(
        run_informers(state, api_client=client, kinds=kinds, stats=stats, config=config, on_event=on_event)
    )
    await asyncio.sleep(0)  # let it start: it declares the kinds the view expects
    try:
        yield stats
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        client.close()


def watches(api: FakeKubeAPI, plural: str) -> list[dict[str, str]]:
    return [q for method, path, q in api.requests if path.endswith("/" + plural) and q.get("watch") == "true"]


async def test_the_first_list_fills_the_view_page_by_page_and_marks_it_synced(api: FakeKubeAPI) -> None:
    """Every kind is listed (in pages) into the view, which then reports itself synced."""
    state = ClusterState()
    async with informing(api, state):
        await eventually(lambda: state.synced, "state.synced")
        await converged(api, state)
        assert state.namespace_labels("apples") == {"kubernetes.io/metadata.name": "apples", "team": "apples"}
        assert [r.name for r in state.routes_with_hostname("api.bananas.example.com")] == ["api"]
        assert any("continue" in q for _, path, q in api.requests if path.endswith("/namespaces"))
        assert all(state.is_synced(k.kind) for k in KINDS)


async def test_watch_events_converge_without_relisting(api: FakeKubeAPI) -> None:
    """Creates, updates and deletes reach the view through the watch, on the loop thread."""
    state, seen, loop_thread = ClusterState(), [], threading.get_ident()

    def on_event(kind: str, etype: str, obj: dict[str, Any] | None) -> None:
        seen.append((kind, etype, threading.get_ident() == loop_thread))

    async with informing(api, state, on_event=on_event) as stats:
        await eventually(lambda: state.synced, "state.synced")
        api.create("HTTPRoute", route("apples", "shop", "shop.apples.example.com"))
        api.update("HTTPRoute", route("apples", "web", "www.apples.example.com"))
        api.delete("HTTPRoute", "bananas", "api")
        api.create("Namespace", namespace("cherries"))
        await converged(api, state)
        assert state.routes_with_hostname("apples.example.com") == ()
        assert stats.kinds["HTTPRoute"].relists == 0
        assert {("HTTPRoute", "ADDED"), ("HTTPRoute", "MODIFIED"), ("HTTPRoute", "DELETED")} <= {
            (k, e) for k, e, _ in seen
        }
        assert all(on_loop for _, _, on_loop in seen)
        assert all(q.get("allowWatchBookmarks") == "true" for q in watches(api, "httproutes"))


async def test_bookmarks_advance_the_remembered_resource_version(api: FakeKubeAPI) -> None:
    """A BOOKMARK moves the kind's resourceVersion forward though none of its objects changed."""
    state = ClusterState()
    async with informing(api, state, config=STEADY) as stats:
        await eventually(lambda: state.synced and api.open_watches == len(KINDS), "state.synced, watches open")
        listed = state.resource_version("HTTPRoute")
        for i in range(3):
            api.create("Namespace", namespace(f"other-{i}"))
        api.send_bookmarks()
        await eventually(
            lambda: state.resource_version("HTTPRoute") == str(api.resource_version), "bookmark RV in the view"
        )
        assert int(state.resource_version("HTTPRoute")) > int(listed)
        assert stats.kinds["HTTPRoute"].bookmarks >= 1
        # The next watch resumes from the bookmark, not from the list.
        api.drop_watches(partial=False)
        await eventually(lambda: len(watches(api, "httproutes")) >= 2, "a second watch")
        assert watches(api, "httproutes")[-1]["resourceVersion"] == str(api.resource_version)


@pytest.mark.parametrize("as_http", [False, True], ids=["error-event", "http-410"])
async def test_an_expired_resource_version_relists_and_drops_what_was_deleted_meanwhile(
    api: FakeKubeAPI, as_http: bool
) -> None:
    """After 410 Gone the kind is relisted, so an object deleted while disconnected leaves the view."""
    api.watch_gone_as_http = as_http
    state = ClusterState()
    async with informing(api, state) as stats:
        await eventually(lambda: state.synced, "state.synced")
        # All at once, without yielding to the loop: the informer sees none of it live.
        api.drop_watches()
        api.delete("HTTPRoute", "bananas", "api")
        api.update("HTTPRoute", route("apples", "web", "new.apples.example.com"))
        api.delete("Namespace", "", "bananas")
        api.compact()
        await converged(api, state)
        assert state.get("HTTPRoute", "bananas", "api") is None
        assert not state.has_namespace("bananas")
        assert stats.kinds["HTTPRoute"].relists >= 1 and stats.kinds["Namespace"].relists >= 1


async def test_a_connection_dropped_mid_event_resumes_from_the_last_resource_version(
    api: FakeKubeAPI,
) -> None:
    """A stream cut inside an event is re-watched from the last RV: no relist, nothing lost."""
    state = ClusterState()
    async with informing(api, state, config=STEADY) as stats:
        await eventually(lambda: state.synced and api.open_watches == len(KINDS), "state.synced, watches open")
        before = len(watches(api, "httproutes"))
        assert api.drop_watches(partial=True) >= 1
        api.create("HTTPRoute", route("apples", "late", "late.apples.example.com"))
        await converged(api, state)
        assert stats.kinds["HTTPRoute"].relists == 0
        assert stats.kinds["HTTPRoute"].errors >= 1
        assert len(watches(api, "httproutes")) > before


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_server_errors_are_retried_with_backoff_until_the_view_converges(
    api: FakeKubeAPI, status: int
) -> None:
    """Failed lists and watches are retried; the view converges once the server recovers."""
    api.fail_next(3, status=status, match="/httproutes")
    state = ClusterState()
    async with informing(api, state) as stats:
        await eventually(lambda: state.is_synced("HTTPRoute"), "HTTPRoute synced")
        api.fail_next(2, status=status, match="/httproutes?")
        api.drop_watches()
        api.create("HTTPRoute", route("apples", "after-outage", "x.apples.example.com"))
        await converged(api, state)
        assert stats.kinds["HTTPRoute"].errors >= 5
        assert str(status) in stats.kinds["HTTPRoute"].last_error


async def test_a_crd_installed_later_is_listed_once_it_appears(api: FakeKubeAPI) -> None:
    """A kind whose CRD is missing is unavailable, not fatal, and synced after the CRD arrives."""
    api.uninstall("ReferenceGrant")
    state = ClusterState()
    async with informing(api, state) as stats:
        await eventually(lambda: "ReferenceGrant" in state.unavailable(), "ReferenceGrant unavailable")
        assert not state.is_synced("ReferenceGrant")
        assert stats.kinds["ReferenceGrant"].available is False
        api.install("ReferenceGrant")
        api.create("ReferenceGrant", {
            "metadata": {"namespace": "bananas", "name": "from-apples"},
            "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "apples"}],
                     "to": [{"group": "", "kind": "Service"}]},
        })
        await eventually(lambda: state.is_synced("ReferenceGrant"), "ReferenceGrant synced")
        await converged(api, state, "ReferenceGrant")
        assert state.synced and not state.unavailable()
        assert len(state.reference_grants("bananas")) == 1


async def test_a_deleted_crd_empties_its_kind_and_marks_it_unavailable(api: FakeKubeAPI) -> None:
    """When a CRD goes away its objects do too; the view must not keep them."""
    state = ClusterState()
    async with informing(api, state):
        await eventually(lambda: state.synced, "state.synced")
        api.uninstall("HTTPRoute")
        await eventually(lambda: "HTTPRoute" in state.unavailable(), "HTTPRoute unavailable")
        await eventually(lambda: state.count("HTTPRoute") == 0, "no HTTPRoute left")


async def test_a_forbidden_kind_is_unavailable_with_the_reason(api: FakeKubeAPI) -> None:
    """Missing RBAC shows up as an unavailable kind that names the HTTP status."""
    api.fail_next(1000, status=403, match="/httproutes")
    state = ClusterState()
    async with informing(api, state):
        await eventually(lambda: "HTTPRoute" in state.unavailable(), "HTTPRoute unavailable")
        assert "403" in state.unavailable()["HTTPRoute"]
        await eventually(lambda: state.is_synced("Namespace"), "Namespace synced regardless")


async def test_the_event_loop_keeps_ticking_while_the_apiserver_is_slow(api: FakeKubeAPI) -> None:
    """The blocking client runs in threads: a heartbeat on the loop never stalls."""
    for i in range(200):
        api.create("Namespace", namespace(f"bulk-{i}"))
    api.delay = 0.3
    gaps: list[float] = []

    async def heartbeat() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    beat = asyncio.create_task(heartbeat())
    state = ClusterState()
    try:
        config = dataclasses.replace(FAST, page_size=50)
        async with informing(api, state, kinds=(KINDS_BY_NAME["Namespace"],), config=config):
            await eventually(lambda: state.synced, "state.synced", timeout=10)
    finally:
        beat.cancel()
    await converged(api, state, "Namespace")
    assert len(gaps) > 50 and max(gaps) < 0.25, f"longest loop stall {max(gaps):.3f}s"


async def test_cancelling_the_informers_ends_every_reflector_thread(api: FakeKubeAPI) -> None:
    """Stopping is prompt: open watches are shut down and no reflector thread survives."""
    state = ClusterState()
    async with informing(api, state):
        await eventually(lambda: state.synced and api.open_watches == len(KINDS), "watches open")
    started = time.monotonic()
    await eventually(lambda: not [t for t in threading.enumerate() if t.name.startswith("reflector-")],
                     "reflector threads gone", timeout=2)
    assert time.monotonic() - started < 2


async def test_every_request_carries_the_clients_bearer_token(api: FakeKubeAPI) -> None:
    """Discovery, lists and watches authenticate with the token of the given client."""
    state = ClusterState()
    async with informing(api, state, token="s3cr3t"):
        await eventually(lambda: state.synced, "state.synced")
    assert len(api.authorizations) >= 3 * len(KINDS)
    assert set(api.authorizations) == {"Bearer s3cr3t"}


async def test_an_expired_continue_token_restarts_the_list(api: FakeKubeAPI) -> None:
    """A 410 in the middle of a paginated list starts a fresh list, which then completes."""
    api.fail_next(1, status=410, match="continue=")
    state = ClusterState()
    async with informing(api, state, kinds=(KINDS_BY_NAME["Namespace"],)) as stats:
        await eventually(lambda: state.synced, "state.synced")
        await converged(api, state, "Namespace")
        assert stats.kinds["Namespace"].relists == 1
        assert stats.kinds["Namespace"].lists == 1
