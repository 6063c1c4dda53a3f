"""A stale view is one not known to be current: a quiet cluster is current, a frozen apiserver is not.

The informer watches the fake apiserver (real HTTP, the ``kubernetes`` client), and the
webhook answers over real HTTPS. The fake sends no bookmark to a watch whose kind nobody
writes, as kube-apiserver does not, and :meth:`FakeKubeAPI.freeze` stops it the way
SIGSTOP stops kube-apiserver: connections stay open, nothing is answered, watches do not
end. Timings are shrunk: ``maxAgeSeconds: 3``, so watches are confirmed every second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import kubernetes.client
import pytest
from conftest import REPO, eventually, make_certificates, review_body, trusting
from kubeapi import FakeKubeAPI
from prometheus_client.parser import text_string_to_metric_families
from test_cli_serve import free_port
from test_telemetry import firing

from webhook.admission import parse_review
from webhook.certs import CertificateFiles
from webhook.freshness import DEFAULT_CONFIRM_INTERVAL, confirm_interval, view_max_age
from webhook.policy.loader import PolicyStore, load_documents
from webhook.runtime import Runtime
from webhook.server import create_app, start
from webhook.state.informer import InformerConfig, InformerStats, run_informers
from webhook.state.kinds import WATCHED_KINDS
from webhook.state.manifests import load_manifests
from webhook.state.store import ClusterState
from webhook.tls import CertificateReloader, server_context

MAX_AGE = 3.0
INTERVAL = MAX_AGE / 3  # the confirmation interval the informer derives from it
FAST = InformerConfig(watch_timeout=4, page_size=50, backoff_initial=0.05, backoff_max=0.2, unavailable_retry=0.2,
                      connect_timeout=2, request_timeout=2, read_margin=1, stop_timeout=3, renew_check=0.2)
GUARDRAILS = (REPO / "policies" / "tenancy-gateway-guardrails.yaml").read_text()
# NotAllowedByListeners and RefNotPermitted from the guardrails policy: rules that read the view.
REFUSED = review_body("httproute-create-cross-namespace-backends.validate")
JSON = {"Content-Type": "application/json"}
EVERY_KIND = tuple(k.kind for k in WATCHED_KINDS)


def policy(max_age: float | None, mode: str = "warn") -> str:
    stale = f"\n  staleState: {{mode: {mode}, maxAgeSeconds: {max_age:g}}}\n" if max_age else "\n"
    return GUARDRAILS.rstrip("\n") + stale


def watches(api: FakeKubeAPI, plural: str, since: int = 0) -> list[dict[str, str]]:
    return [q for _, path, q in api.requests[since:] if path.endswith("/" + plural) and q.get("watch") == "true"]


@pytest.fixture
async def api() -> AsyncIterator[FakeKubeAPI]:
    async with FakeKubeAPI() as server:
        server.register_watched()
        for manifest in load_manifests([REPO / "policies" / "dev-state"]):
            server.create(manifest.obj["kind"], manifest.obj)
        yield server
        server.thaw()  # a test that failed while frozen must not leave reflector threads waiting


@dataclass
class Webhook:
    url: str
    context: ssl.SSLContext
    state: ClusterState
    stats: InformerStats

    def _session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(self.url, connector=aiohttp.TCPConnector(ssl=self.context))

    async def review(self, body: bytes = REFUSED) -> dict[str, Any]:
        async with self._session() as session, session.post("/validate?timeout=5s", data=body, headers=JSON) as resp:
            assert resp.status == 200
            return (await resp.json())["response"]

    async def scrape(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        async with self._session() as session, session.get("/metrics") as resp:
            text = await resp.text()
        return {(s.name, frozenset(s.labels.items())): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}


def says_stale(response: dict[str, Any]) -> bool:
    return any("the cluster view is stale" in w for w in response.get("warnings") or ())


def refused(response: dict[str, Any]) -> bool:
    return response["allowed"] is False and response["status"]["reason"] == "NotAllowedByListeners"


@contextlib.asynccontextmanager
async def webhook(api: FakeKubeAPI, tmp_path: Path, certificates: CertificateFiles,
                  max_age: float | None = MAX_AGE) -> AsyncIterator[Webhook]:
    """The server as ``serve --kubeconfig`` wires it: HTTPS, the policies, the informer confirming within them."""
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "guardrails.yaml").write_text(policy(max_age))
    store = PolicyStore(tmp_path / "policies")
    assert store.reload(), store.errors
    state, stats = ClusterState(expected_kinds=EVERY_KIND), InformerStats()
    runtime = Runtime(policies=store, state=state)
    client = kubernetes.client.ApiClient(kubernetes.client.Configuration(host=api.url))

    async def informer() -> None:
        await run_informers(state, api_client=client, stats=stats, config=FAST,
                            confirm_within=lambda: confirm_interval(store.current))

    context = server_context(certificates.cert, certificates.key)
    app = create_app(runtime, certificates=CertificateReloader(context, certificates.cert, certificates.key),
                     policy_interval=None, informer=informer)
    runner, port = await start(app, host="127.0.0.1", port=0, ssl_context=context, access_log=False)
    try:
        await eventually(lambda: state.synced, "the view synced")
        yield Webhook(f"https://127.0.0.1:{port}", trusting(certificates), state, stats)
    finally:
        api.thaw()
        await runner.cleanup()
        client.close()


async def until(check: Callable[[], Any], what: str, timeout: float) -> float:
    """Poll the coroutine ``check()`` until it is true; return when that was (monotonic)."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for: {what}")
        await asyncio.sleep(0.05)
    return time.monotonic()


# ------------------------------------------------------------------------------ the limit
@pytest.mark.parametrize(("max_ages", "flag", "limit", "interval"), [
    ((), DEFAULT_CONFIRM_INTERVAL, 900, 300),
    ((300,), DEFAULT_CONFIRM_INTERVAL, 300, 100),
    ((300, 60), DEFAULT_CONFIRM_INTERVAL, 60, 20),
    ((None, 60), DEFAULT_CONFIRM_INTERVAL, 60, 20),
    ((3000,), DEFAULT_CONFIRM_INTERVAL, 900, 300),
    ((300,), 30, 90, 30),
    ((), 30, 90, 30),
], ids=["no-policy-limit", "one-policy", "strictest-policy-wins", "a-policy-without-a-limit",
        "a-limit-beyond-three-intervals", "flag-tighter-than-the-policy", "flag-alone"])
def test_the_staleness_limit_and_the_confirmation_interval_come_from_the_policies_and_the_flag(
    max_ages: tuple[float | None, ...], flag: float, limit: float, interval: float,
) -> None:
    """The limit is the strictest maxAgeSeconds (three intervals at most); watches are confirmed three times within it."""
    documents = [(f"p{i}.yaml", policy(age).replace("name: gateway-guardrails", f"name: p{i}"))
                 for i, age in enumerate(max_ages)]
    policies = load_documents(documents)
    assert view_max_age(policies, flag) == limit
    assert confirm_interval(policies, flag) == interval


# ------------------------------------------------------------------------------ through the webhook
async def test_a_quiet_cluster_stays_current_and_a_refused_route_stays_denied(
    api: FakeKubeAPI, tmp_path: Path, certificates: CertificateFiles,
) -> None:
    """No writes and no bookmarks for longer than maxAgeSeconds: every watch is resumed each interval, so the view
    stays current, the refused route is denied, and the alert stays silent."""
    async with webhook(api, tmp_path, certificates) as hook:
        listed = {kind: hook.state.resource_version(kind) for kind in hook.state.expected_kinds}
        since = len(api.requests)
        oldest, quiet_until = 0.0, time.monotonic() + MAX_AGE + 1.5
        while time.monotonic() < quiet_until:
            oldest = max(oldest, hook.state.view_age())
            if oldest > 1:
                api.send_bookmarks()  # as kube-apiserver: the resourceVersion has not moved, so no watch gets one
            await asyncio.sleep(0.05)
        response = await hook.review()
        scraped = await hook.scrape()
    assert oldest < INTERVAL + 1, f"the view reached {oldest:.2f}s on a healthy, quiet watch"
    assert refused(response) and not says_stale(response), response
    assert firing("RoutewardenWatchBehind", scraped) == set()
    assert scraped[("routewarden_cache_max_age_seconds", frozenset())] == MAX_AGE
    for kind in WATCHED_KINDS:
        resumed = watches(api, kind.plural, since)
        assert len(resumed) >= 3, (kind.kind, resumed)
        assert {q["resourceVersion"] for q in resumed} == {listed[kind.kind]}, kind.kind  # resumed, not relisted
        assert {q["timeoutSeconds"] for q in resumed} == {"1"}, kind.kind
        assert hook.stats.kinds[kind.kind].bookmarks == 0 and hook.stats.kinds[kind.kind].lists == 1


async def test_a_frozen_apiserver_is_stale_within_max_age_and_recovery_takes_one_watch_restart(
    api: FakeKubeAPI, tmp_path: Path, certificates: CertificateFiles,
) -> None:
    """Frozen with every connection open: the answer says the view is stale no later than maxAgeSeconds after the
    freeze, and the alert fires; once the apiserver answers again, the route is denied within one interval."""
    async with webhook(api, tmp_path, certificates) as hook:
        await asyncio.sleep(INTERVAL)  # past the first resumes: watches in their steady state
        assert refused(await hook.review())
        frozen_at = time.monotonic()
        api.freeze()

        async def stale() -> bool:
            return says_stale(await hook.review())

        stale_at = await until(stale, "the answer saying the view is stale", timeout=MAX_AGE + 2)
        answer = await hook.review()
        alerting = firing("RoutewardenWatchBehind", await hook.scrape())
        thawed_at = time.monotonic()
        api.thaw()

        async def denied_again() -> bool:
            return refused(await hook.review())

        recovered_at = await until(denied_again, "the refused route denied again", timeout=MAX_AGE)
        after = firing("RoutewardenWatchBehind", await hook.scrape())
        lists = {kind: s.lists for kind, s in hook.stats.kinds.items()}
    print(f"stale {stale_at - frozen_at:.2f}s after the freeze, current {recovered_at - thawed_at:.2f}s after the thaw")
    assert MAX_AGE - INTERVAL - 0.5 <= stale_at - frozen_at <= MAX_AGE + 0.5
    assert answer["allowed"] is True and says_stale(answer), answer  # staleState.mode warn: findings only warn
    assert "NotAllowedByListeners" in json.dumps(answer["warnings"])
    assert alerting and alerting <= set(hook.state.expected_kinds)  # the kinds past the limit so far
    assert recovered_at - thawed_at <= INTERVAL + 0.5
    assert after == set()
    assert set(lists.values()) == {1}, lists  # every kind resumed from its resourceVersion: nothing relisted


async def test_an_enforcing_policy_denies_as_stale_while_the_apiserver_is_frozen(
    api: FakeKubeAPI, tmp_path: Path, certificates: CertificateFiles,
) -> None:
    """staleState.mode enforce: while frozen past the limit the answer is StaleClusterView, not a guess."""
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "guardrails.yaml").write_text(policy(MAX_AGE, mode="enforce"))
    state = ClusterState(expected_kinds=EVERY_KIND)
    store = PolicyStore(tmp_path / "policies")
    assert store.reload(), store.errors
    client = kubernetes.client.ApiClient(kubernetes.client.Configuration(host=api.url))
    task = asyncio.create_task(run_informers(state, api_client=client, config=FAST,
                                             confirm_within=lambda: confirm_interval(store.current)))
    try:
        await eventually(lambda: state.synced, "the view synced")
        runtime = Runtime(policies=store, state=state)
        review = parse_review(json.loads(REFUSED))
        assert runtime.review(review, webhook="validate").reason == "NotAllowedByListeners"
        api.freeze()
        await eventually(lambda: runtime.review(review, webhook="validate").reason == "StaleClusterView",
                         "denied as stale", timeout=MAX_AGE + 1)
        api.thaw()
        await eventually(lambda: runtime.review(review, webhook="validate").reason == "NotAllowedByListeners",
                         "denied by the listener again", timeout=INTERVAL + 1)
    finally:
        api.thaw()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        client.close()


# ------------------------------------------------------------------------------ the informer
async def test_a_shorter_interval_renews_open_watches_at_once(api: FakeKubeAPI) -> None:
    """A policy with a smaller maxAgeSeconds is loaded: watches that would outlive the new interval are cut and
    resumed from their resourceVersion now, without an error, a backoff or a relist."""
    interval = [DEFAULT_CONFIRM_INTERVAL]
    state, stats = ClusterState(expected_kinds=EVERY_KIND), InformerStats()
    client = kubernetes.client.ApiClient(kubernetes.client.Configuration(host=api.url))
    config = InformerConfig(watch_timeout=DEFAULT_CONFIRM_INTERVAL, backoff_initial=5, backoff_max=5,
                            renew_check=0.1, stop_timeout=3)
    task = asyncio.create_task(run_informers(state, api_client=client, stats=stats, config=config,
                                             confirm_within=lambda: interval[0]))
    try:
        await eventually(lambda: state.synced and api.open_watches == len(WATCHED_KINDS), "every kind watched")
        first = {k.kind: watches(api, k.plural) for k in WATCHED_KINDS}
        assert all(len(w) == 1 and 150 <= int(w[0]["timeoutSeconds"]) <= 300 for w in first.values()), first
        since = len(api.requests)
        renewed_at = time.monotonic()
        interval[0] = 2.0
        await eventually(lambda: all(watches(api, k.plural, since) for k in WATCHED_KINDS), "every watch renewed",
                         timeout=2)
        took = time.monotonic() - renewed_at
        await asyncio.sleep(0.3)  # an error or a relist, had there been one, would show by now
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        client.close()
    assert took < 1, f"renewing took {took:.2f}s"
    for kind in WATCHED_KINDS:
        (again,) = watches(api, kind.plural, since)[:1]
        assert again["resourceVersion"] == first[kind.kind][0]["resourceVersion"]
        assert int(again["timeoutSeconds"]) in (1, 2)
        assert stats.kinds[kind.kind].errors == 0 and stats.kinds[kind.kind].lists == 1


# ------------------------------------------------------------------------------ serve
@pytest.mark.parametrize(("max_age", "flag", "limit", "longest_watch"), [
    (3, None, 3, 1),
    (None, "2", 6, 2),
], ids=["from-the-policy", "from-the-flag"])
def test_serve_confirms_its_watches_within_the_policies_limit_or_the_flag(
    tmp_path: Path, max_age: float | None, flag: str | None, limit: float, longest_watch: int,
) -> None:
    """``routewarden serve --kubeconfig``: the watches it opens end within the confirmation interval, and /metrics
    exports the limit the alert compares with."""
    files = make_certificates(tmp_path / "certs", "--host", "localhost", "--ip", "127.0.0.1")
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "guardrails.yaml").write_text(policy(max_age))
    api = FakeKubeAPI()
    api.register_watched()
    with api.in_thread():
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "webhook", "serve", "--kubeconfig", str(kubeconfig), "--policies",
             str(tmp_path / "policies"), "--cert-dir", str(files.directory), "--address", "127.0.0.1",
             "--port", str(port), "--audit-interval", "0", *(["--watch-confirm-interval", flag] if flag else [])],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        try:
            deadline = time.monotonic() + 30
            while not all(watches(api, k.plural) for k in WATCHED_KINDS):
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "serve opened no watch for some kind within 30 s"
                time.sleep(0.1)
            metrics, context = "", ssl.create_default_context(cafile=str(files.ca_cert))
            while "routewarden_cache_max_age_seconds" not in metrics and time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(f"https://127.0.0.1:{port}/metrics", context=context,
                                                timeout=5) as resp:
                        metrics = resp.read().decode()
                except OSError:
                    time.sleep(0.1)
        finally:
            process.terminate()
            process.wait(30)
    timeouts = {int(q["timeoutSeconds"]) for k in WATCHED_KINDS for q in watches(api, k.plural)}
    assert timeouts and max(timeouts) <= longest_watch, timeouts
    assert f"routewarden_cache_max_age_seconds {float(limit)}" in metrics, metrics
