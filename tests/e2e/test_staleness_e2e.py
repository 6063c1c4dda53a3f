"""Staleness against a real kube-apiserver: quiet is current, frozen is stale, resumed is current again.

routewarden runs here as ``serve`` wires it (HTTPS, the informer watching every kind,
watches confirmed within a third of ``maxAgeSeconds: 60``) and is registered with the
API server by ``url`` + ``caBundle``, scoped to the namespaces this run creates.

- Quiet: nothing is written for 100 s. kube-apiserver sends no bookmark to a watch of a
  kind nobody writes, yet the view stays current, and a route the listener refuses is
  still denied through the API server.
- Frozen: the API server is stopped with SIGSTOP for 100 s (its connections stay open).
  The webhook, asked directly, says the view is stale; after SIGCONT the route is denied
  again, through the API server, within 60 s.

The freeze needs the API server's PID in ``ROUTEWARDEN_E2E_APISERVER_PID`` (the harness
writes it to ``$HARNESS_RUN_DIR/kube-apiserver.pid``); without it that test skips. Both
tests take minutes. Run with ``KUBECONFIG=... pytest -m e2e tests/e2e/test_staleness_e2e.py -s``
to see the timings.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import ssl
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from e2e_support import (
    GATEWAY_GROUP,
    Cluster,
    api_client_fixture,  # noqa: F401 - provides the api_client fixture
    eventually,
    webhook_files,
)
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from webhook.freshness import confirm_interval
from webhook.policy.loader import PolicyStore
from webhook.runtime import Runtime
from webhook.server import create_app, start
from webhook.state.informer import InformerStats, run_informers
from webhook.state.kinds import WATCHED_KINDS
from webhook.state.store import ClusterState
from webhook.tls import CertificateReloader, server_context

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

HOST = os.environ.get("ROUTEWARDEN_E2E_WEBHOOK_HOST", "127.0.0.1")
PID_VARIABLE = "ROUTEWARDEN_E2E_APISERVER_PID"
MAX_AGE = 60
QUIET = FROZEN = 100.0
RECOVERY = 60.0

POLICY = """\
apiVersion: routewarden.dev/v1alpha1
kind: TenancyPolicy
metadata: {{name: e2e-stale-{run}}}
spec:
  match:
    gateways: [{{namespace: {infra}, name: shared}}]
  attachment: {{mirrorListeners: true}}
  staleState: {{mode: warn, maxAgeSeconds: {max_age}}}
"""


def refused_route(run: str, infra: str) -> dict[str, Any]:
    """A route for a listener that admits only its own namespace."""
    return {"metadata": {"name": "refused"},
            "spec": {"parentRefs": [{"name": "shared", "namespace": infra}], "hostnames": [f"r-{run}.example.com"],
                     "rules": [{"backendRefs": [{"name": "echo", "port": 8080}]}]}}


@dataclass
class Setup:
    run: str
    infra: str
    tenant: str
    cluster: Cluster
    state: ClusterState
    stats: InformerStats
    url: str
    context: ssl.SSLContext

    async def through_the_api_server(self) -> dict[str, Any]:
        """The API server's answer to a dry-run create of the refused route (its Status body on refusal)."""
        try:
            await self.cluster.create("HTTPRoute", self.tenant, refused_route(self.run, self.infra), dry_run=True)
        except ApiException as exc:
            return {"code": exc.status, **json.loads(exc.body or "{}")}
        return {"code": 201}

    async def directly(self) -> dict[str, Any]:
        """routewarden's own answer, asked as kube-apiserver asks it (which it cannot while frozen)."""
        obj = {"apiVersion": f"{GATEWAY_GROUP}/{self.cluster.versions['HTTPRoute']}", "kind": "HTTPRoute",
               **refused_route(self.run, self.infra)}
        obj["metadata"] = {**obj["metadata"], "namespace": self.tenant}
        gvk = {"group": GATEWAY_GROUP, "version": self.cluster.versions["HTTPRoute"], "kind": "HTTPRoute"}
        gvr = {"group": GATEWAY_GROUP, "version": self.cluster.versions["HTTPRoute"], "resource": "httproutes"}
        review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": str(uuid.uuid4()), "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
            "name": "refused", "namespace": self.tenant, "operation": "CREATE",
            "userInfo": {"username": "e2e", "groups": ["system:authenticated"]},
            "object": obj, "oldObject": None, "dryRun": True,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}}}
        connector = aiohttp.TCPConnector(ssl=self.context)
        async with aiohttp.ClientSession(self.url, connector=connector) as session, \
                session.post("/validate?timeout=10s", json=review) as resp:
            assert resp.status == 200
            return (await resp.json())["response"]


def denied_by_listener(answer: dict[str, Any]) -> bool:
    return answer.get("code") == 403 and answer.get("reason") == "NotAllowedByListeners"


def says_stale(response: dict[str, Any]) -> bool:
    return any("the cluster view is stale" in w for w in response.get("warnings") or ())


@contextlib.asynccontextmanager
async def routewarden_registered(api_client: Any, tmp_path: Path) -> AsyncIterator[Setup]:
    """Namespaces, a Gateway whose listener admits only its own namespace, routewarden serving and registered."""
    cluster = Cluster(api_client)
    admission = k8s.AdmissionregistrationV1Api(api_client)
    run = uuid.uuid4().hex[:8]
    infra, tenant = f"rw-e2e-{run}-infra", f"rw-e2e-{run}-tenant"
    certs = webhook_files(tmp_path, POLICY.format(run=run, infra=infra, max_age=MAX_AGE))
    store = PolicyStore(tmp_path / "policies")
    assert store.reload(), store.errors
    state, stats = ClusterState(expected_kinds=[k.kind for k in WATCHED_KINDS]), InformerStats()
    runtime = Runtime(policies=store, state=state)

    async def informer() -> None:  # the production defaults, as serve --kubeconfig runs it
        await run_informers(state, api_client=api_client, stats=stats,
                            confirm_within=lambda: confirm_interval(store.current))

    created: list[str] = []
    runner = None
    try:
        for ns in (infra, tenant):
            await cluster.namespace(ns, run)
            created.append(ns)
        await cluster.create("Gateway", infra, {"metadata": {"name": "shared"}, "spec": {
            "gatewayClassName": f"routewarden-e2e-{run}",
            "listeners": [{"name": "http", "port": 80, "protocol": "HTTP",
                           "allowedRoutes": {"namespaces": {"from": "Same"}}}]}})
        context = server_context(certs.cert, certs.key)
        app = create_app(runtime, certificates=CertificateReloader(context, certs.cert, certs.key),
                         policy_interval=None, informer=informer)
        runner, port = await start(app, host=HOST, port=0, ssl_context=context, access_log=False)
        await eventually(lambda: runtime.readiness()[0], "routewarden ready (policies loaded, view synced)")
        await eventually(lambda: state.gateway(infra, "shared") is not None, "the Gateway in the view")
        await asyncio.to_thread(admission.create_validating_webhook_configuration, {
            "metadata": {"name": f"routewarden-e2e-{run}"},
            "webhooks": [{
                "name": f"validate.{run}.e2e.routewarden.dev",
                "clientConfig": {"url": f"https://{HOST}:{port}/validate",
                                 "caBundle": base64.b64encode(certs.ca_cert.read_bytes()).decode()},
                "rules": [{"apiGroups": [GATEWAY_GROUP], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"],
                           "resources": ["httproutes"], "scope": "Namespaced"}],
                "namespaceSelector": {"matchLabels": {"routewarden.dev/e2e": run}},
                "sideEffects": "None", "admissionReviewVersions": ["v1"], "failurePolicy": "Fail",
                "timeoutSeconds": 5,
            }],
        })
        setup = Setup(run, infra, tenant, cluster, state, stats, f"https://{HOST}:{port}",
                      ssl.create_default_context(cafile=str(certs.ca_cert)))
        answer: dict[str, Any] = {}
        for _ in range(30):  # until the API server has loaded the new configuration
            answer = await setup.through_the_api_server()
            if answer["code"] != 201:
                break
            await asyncio.sleep(1)
        if "failed calling webhook" in answer.get("message", ""):
            pytest.skip(f"the API server cannot reach the webhook at {HOST}:{port}: {answer['message']}")
        assert denied_by_listener(answer), answer
        yield setup
    finally:
        with contextlib.suppress(ApiException):
            await asyncio.to_thread(admission.delete_validating_webhook_configuration, f"routewarden-e2e-{run}")
        if runner is not None:
            await runner.cleanup()
        for ns in created:
            await cluster.delete_namespace(ns)


async def test_a_quiet_cluster_keeps_a_refused_route_denied(api_client: Any, tmp_path: Path) -> None:
    """100 s without a write and without a bookmark: the view stays current and the route stays denied."""
    async with routewarden_registered(api_client, tmp_path) as setup:
        bookmarks = sum(s.bookmarks for s in setup.stats.kinds.values())
        oldest, started = 0.0, time.monotonic()
        while time.monotonic() - started < QUIET:
            oldest = max(oldest, setup.state.view_age())
            await asyncio.sleep(1)
        answer, direct = await setup.through_the_api_server(), await setup.directly()
        print(f"\nquiet {QUIET:.0f}s: oldest view age {oldest:.1f}s (limit {MAX_AGE}s), "
              f"bookmarks {sum(s.bookmarks for s in setup.stats.kinds.values()) - bookmarks}, "
              f"watch resumes {sum(s.watch_restarts for s in setup.stats.kinds.values())}")
    assert oldest < MAX_AGE / 2, oldest
    assert denied_by_listener(answer), answer
    assert not direct["allowed"] and not says_stale(direct), direct


def seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f}s"


def apiserver_pid() -> int:
    """The PID to SIGSTOP, checked to be a kube-apiserver (never anything else)."""
    text = os.environ.get(PID_VARIABLE, "")
    if not text.isdigit():
        pytest.skip(f"freezing the API server needs its PID in {PID_VARIABLE} "
                    "(the harness writes it to $HARNESS_RUN_DIR/kube-apiserver.pid)")
    pid = int(text)
    try:
        exe = os.path.basename(os.readlink(f"/proc/{pid}/exe"))
    except OSError as exc:
        pytest.skip(f"{PID_VARIABLE}={pid} is not a process this test can signal: {exc}")
    if exe != "kube-apiserver":
        pytest.skip(f"{PID_VARIABLE}={pid} runs {exe}, not kube-apiserver")
    return pid


async def test_a_frozen_api_server_turns_the_view_stale_and_a_resumed_one_denies_again(
    api_client: Any, tmp_path: Path,
) -> None:
    """SIGSTOP for 100 s: the answer says the view is stale; 60 s after SIGCONT the route is denied again."""
    pid = apiserver_pid()
    async with routewarden_registered(api_client, tmp_path) as setup:
        await asyncio.sleep(5)  # past the first resumes
        stale_after = None
        os.kill(pid, signal.SIGSTOP)
        frozen_at = time.monotonic()
        try:
            while time.monotonic() - frozen_at < FROZEN:
                if stale_after is None and says_stale(await setup.directly()):
                    stale_after = time.monotonic() - frozen_at
                await asyncio.sleep(1)
            frozen = await setup.directly()
            age_when_frozen = setup.state.view_age()
        finally:
            os.kill(pid, signal.SIGCONT)
        resumed_at = time.monotonic()
        direct_after = through_after = None
        while time.monotonic() - resumed_at < RECOVERY:
            if direct_after is None and not says_stale(await setup.directly()):
                direct_after = time.monotonic() - resumed_at
            if direct_after is not None and denied_by_listener(await setup.through_the_api_server()):
                through_after = time.monotonic() - resumed_at
                break
            await asyncio.sleep(1)
        print(f"\nfrozen {FROZEN:.0f}s: stale after {seconds(stale_after)} (limit {MAX_AGE}s), view age at the end "
              f"{age_when_frozen:.0f}s; after SIGCONT current again in {seconds(direct_after)}, denied through the "
              f"API server in {seconds(through_after)}; relists {sum(s.relists for s in setup.stats.kinds.values())}")
    assert stale_after is not None and stale_after <= MAX_AGE + 2, stale_after
    assert frozen["allowed"] and says_stale(frozen), frozen  # staleState.mode warn: the finding only warns
    assert "NotAllowedByListeners" in json.dumps(frozen["warnings"])
    assert through_after is not None and through_after <= RECOVERY, (direct_after, through_after)
