"""Faults while reviews keep arriving: nothing is lost, and every answer is the right one.

A load of 4 HTTPS clients posts reviews back to back for a few seconds (loopback only)
while one fault happens: the serving certificate rotates, the policy directory turns
invalid and then changes, the informer's watches drop and the apiserver answers 410
Gone, or the process gets SIGTERM. Each test prints requests sent, answered and failed,
and asserts failed == 0 (a failure is an error, a non-200, or an answer other than the
one the state in force at that moment gives).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import kubernetes.client
import pytest
from conftest import REPO, eventually, review_body, trusting
from kubeapi import FakeKubeAPI
from test_server_rotation import der, mount_secret

from webhook.certs import CertificateFiles, build_ca, build_serving_certificate
from webhook.policy.loader import PolicyStore
from webhook.runtime import Runtime
from webhook.server import create_app, start
from webhook.state.informer import InformerConfig, run_informers
from webhook.state.manifests import load_manifests, state_from_manifests
from webhook.state.store import ClusterState
from webhook.tls import CertificateReloader, server_context

SECONDS = 3.0
CLIENTS = 4
JSON = {"Content-Type": "application/json"}
# Denied by the shipped policies against the dev cluster view: NotAllowedByListeners and
# RefNotPermitted, rules that read the cluster view.
DENIED = review_body("httproute-create-cross-namespace-backends.validate")
ALLOWED = review_body("httproute-create.validate")
DEV_OBJECTS = [m.obj for m in load_manifests([REPO / "policies" / "dev-state"])]


@dataclass
class Tally:
    sent: int = 0
    answered: int = 0
    failed: int = 0
    refused: int = 0  # a new connection refused before anything was sent (after SIGTERM only)
    answers: list[tuple[float, bool]] = field(default_factory=list)  # (time, allowed)
    errors: list[str] = field(default_factory=list)

    def report(self, what: str) -> str:
        line = f"{what}: sent {self.sent}, answered {self.answered}, failed {self.failed}"
        if self.refused:
            line += f", refused before sending {self.refused}"
        print(line)
        return line


Expect = Callable[[dict[str, Any]], bool]


async def one_client(url: str, context: ssl.SSLContext, body: bytes, tally: Tally, *, until: float,
                     expect: Expect | None, new_connections: bool, stop_on_refusal: bool) -> None:
    connector = aiohttp.TCPConnector(ssl=context, limit=1, force_close=new_connections)
    async with aiohttp.ClientSession(url, connector=connector) as session:
        while time.monotonic() < until:
            try:
                async with session.post("/validate?timeout=5s", data=body, headers=JSON) as resp:
                    tally.sent += 1
                    document = await resp.json(content_type=None)
            except aiohttp.ClientConnectorError:
                if not stop_on_refusal:
                    raise
                tally.refused += 1
                return
            except Exception as exc:  # noqa: BLE001 - every other way of failing is a lost review
                tally.sent += 1
                tally.failed += 1
                tally.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            response = document.get("response") or {}
            ok = resp.status == 200 and (expect is None or expect(response))
            tally.answered += ok
            tally.failed += not ok
            if not ok:
                tally.errors.append(f"HTTP {resp.status}: {json.dumps(document)[:200]}")
            tally.answers.append((time.monotonic(), bool(response.get("allowed"))))


async def run_load(url: str, context: ssl.SSLContext, body: bytes, *, seconds: float = SECONDS,
                   expect: Expect | None = None, new_connections: int = 0, stop_on_refusal: bool = False) -> Tally:
    """``CLIENTS`` clients, the first ``new_connections`` of them dialling anew for every review."""
    tally = Tally()
    until = time.monotonic() + seconds
    await asyncio.gather(*(one_client(url, context, body, tally, until=until, expect=expect,
                                      new_connections=i < new_connections, stop_on_refusal=stop_on_refusal)
                           for i in range(CLIENTS)))
    return tally


def judged_on(state: ClusterState) -> dict[str, Any]:
    """The response the shipped policies give DENIED on ``state`` (uid aside)."""
    from webhook.admission import build_response, decode_json, parse_review
    from webhook.engine import decide
    from webhook.policy.loader import load_paths

    request = parse_review(decode_json(DENIED))
    response = build_response(request, decide(request, load_paths([REPO / "policies"]), state))["response"]
    return {k: v for k, v in response.items() if k != "uid"}


def same_as(expected: dict[str, Any]) -> Expect:
    return lambda response: {k: v for k, v in response.items() if k != "uid"} == expected


def dev_runtime(policies: PolicyStore) -> Runtime:
    return Runtime(policies=policies, state=state_from_manifests(load_manifests([REPO / "policies" / "dev-state"])),
                   require_sync=False)


@contextlib.asynccontextmanager
async def serving(runtime: Runtime, files: CertificateFiles, **app_options: Any) -> AsyncIterator[str]:
    context = server_context(files.cert, files.key)
    app = create_app(runtime, certificates=CertificateReloader(context, files.cert, files.key), **app_options)
    runner, port = await start(app, host="127.0.0.1", port=0, ssl_context=context, access_log=False)
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


# ------------------------------------------------------------------ certificate rotation
async def test_a_certificate_rotation_under_load_fails_no_handshake_and_no_review(
    runtime: Runtime, tmp_path: Path
) -> None:
    """Two clients keep their connections, two dial anew each time; the swap loses nothing."""
    ca = build_ca()
    old, new = (build_serving_certificate(["localhost"], ["127.0.0.1"], ca) for _ in range(2))
    mount_secret(tmp_path, old, ca, 1)
    files = CertificateFiles(tmp_path)
    async with serving(runtime, files, certificate_interval=0.05, policy_interval=None) as url:
        async def rotate() -> None:
            await asyncio.sleep(SECONDS / 3)
            mount_secret(tmp_path, new, ca, 2)

        tally, _ = await asyncio.gather(run_load(url, trusting(files), ALLOWED, new_connections=2), rotate())
        _, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]),
                                                       ssl=trusting(files), server_hostname="localhost")
        served = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.close()
    tally.report("certificate rotation")
    assert tally.failed == 0 and tally.answered == tally.sent > 20, tally.errors[:5]
    assert served == der(new.cert_pem)


# ------------------------------------------------------------------ policy reload
TENANCY_ONLY_SERVICES = sorted(p.name for p in (REPO / "policies").glob("servicepolicy-*.yaml"))


async def test_policies_turning_invalid_under_load_keep_the_last_good_set_judging(
    tmp_path: Path, certificates: CertificateFiles
) -> None:
    """Invalid files: reviews keep being denied by the old set and /readyz stays ready; a valid change applies."""
    directory = tmp_path / "policies"
    directory.mkdir()
    for path in (REPO / "policies").glob("*.yaml"):
        shutil.copy(path, directory / path.name)
    store = PolicyStore(directory)
    assert store.reload()
    runtime = dev_runtime(store)
    ready: list[int] = []
    async with serving(runtime, certificates, policy_interval=0.05) as url:
        context = trusting(certificates)

        async def change_policies() -> float:
            await asyncio.sleep(SECONDS / 4)
            (directory / "tenancy-shared-gateway.yaml").write_text("apiVersion: routewarden.dev/v1alpha1\nkind: [\n")
            async with aiohttp.ClientSession(url, connector=aiohttp.TCPConnector(ssl=context)) as session:
                for _ in range(10):
                    await asyncio.sleep(SECONDS / 40)
                    async with session.get("/readyz") as resp:
                        ready.append(resp.status)
            for name in ("tenancy-shared-gateway.yaml", "tenancy-gateway-guardrails.yaml"):
                (directory / name).unlink()  # valid again, and no tenancy policy left: allowed
            return time.monotonic()

        tally, valid_again = await asyncio.gather(run_load(url, context, DENIED), change_policies())
    early = [allowed for at, allowed in tally.answers if at < valid_again]
    late = [allowed for at, allowed in tally.answers if at > valid_again + 0.5]
    wrong = sum(early) + late.count(False)
    tally.failed += wrong
    tally.report("policy reload (invalid, then valid)")
    assert tally.failed == 0, tally.errors[:5]
    assert early and late and ready == [200] * 10
    assert store.current.tenancy == () and store.current.services


# ------------------------------------------------------------------ watches dropped, 410 Gone
FAST = InformerConfig(watch_timeout=4, page_size=2, backoff_initial=0.05, backoff_max=0.2, unavailable_retry=0.2,
                      connect_timeout=2, request_timeout=5, read_margin=2, stop_timeout=3)


@pytest.fixture
async def api() -> AsyncIterator[FakeKubeAPI]:
    async with FakeKubeAPI(history=100) as server:
        server.register_watched()
        for obj in DEV_OBJECTS:
            server.create(obj["kind"], obj)
        yield server


def informer_for(api: FakeKubeAPI, state: ClusterState, client: kubernetes.client.ApiClient) -> Callable[[], Any]:
    async def run() -> None:
        await run_informers(state, api_client=client, config=FAST)
    return run


async def test_watches_dropped_and_a_410_relist_under_load_never_change_an_answer(
    api: FakeKubeAPI, certificates: CertificateFiles
) -> None:
    """The view is relisted whole (atomically on the loop), so reviews judged meanwhile stay denied."""
    from webhook.policy.loader import load_paths

    state = ClusterState()
    client = kubernetes.client.ApiClient(kubernetes.client.Configuration(host=api.url))
    runtime = Runtime(policies=PolicyStore(initial=load_paths([REPO / "policies"])), state=state)
    try:
        async with serving(runtime, certificates, policy_interval=None,
                           informer=informer_for(api, state, client)) as url:
            await eventually(lambda: state.synced, "the view synced")

            async def faults() -> int:
                drops = 0
                for _ in range(3):
                    await asyncio.sleep(SECONDS / 4)
                    drops += api.drop_watches()
                    api.create("Namespace", {"apiVersion": "v1", "kind": "Namespace",
                                             "metadata": {"name": f"late-{drops}"}})
                    api.compact()  # the resumed watches get 410 Gone: every kind relists
                return drops

            expected = same_as(judged_on(state_from_manifests(load_manifests([REPO / "policies" / "dev-state"]))))
            tally, drops = await asyncio.gather(run_load(url, trusting(certificates), DENIED, expect=expected), faults())
            await eventually(lambda: state.has_namespace("late-" + str(drops)), "the namespace created while disconnected")
    finally:
        client.close()
    tally.report(f"watches dropped x{drops} and relisted after 410")
    assert drops >= 3 and tally.failed == 0 and tally.answered == tally.sent > 20, tally.errors[:5]


# ------------------------------------------------------------------ stale view
STALE_ENFORCE = (REPO / "policies" / "tenancy-gateway-guardrails.yaml").read_text().rstrip("\n") + """
  staleState:
    mode: enforce
"""


@pytest.mark.parametrize(("policy_text", "allowed", "expected"), [
    (None, True, "only warns until it is current"),
    (STALE_ENFORCE, False, "StaleClusterView"),
], ids=["staleState-warn", "staleState-enforce"])
async def test_an_unsynced_view_degrades_as_the_policy_says_through_the_server(
    api: FakeKubeAPI, aiohttp_client: Any, tmp_path: Path, policy_text: str | None, allowed: bool, expected: str
) -> None:
    """The apiserver fails every route list: state rules warn (or deny as stale), never pass silently."""
    from webhook.policy.loader import load_paths

    if policy_text is not None:
        (tmp_path / "p.yaml").write_text(policy_text)
    policies = load_paths([tmp_path / "p.yaml"] if policy_text else [REPO / "policies"])
    api.fail_next(10_000, status=503, match="/httproutes")
    state = ClusterState()
    client = kubernetes.client.ApiClient(kubernetes.client.Configuration(host=api.url))
    runtime = Runtime(policies=PolicyStore(initial=policies), state=state)
    try:
        app = create_app(runtime, policy_interval=None, informer=informer_for(api, state, client))
        http = await aiohttp_client(app)
        await eventually(lambda: state.is_synced("Gateway") and state.is_synced("Namespace"), "Gateways and Namespaces synced")
        assert not state.synced
        resp = await http.post("/validate", data=DENIED, headers=JSON)
        response = (await resp.json())["response"]
        readyz = await http.get("/readyz")
    finally:
        client.close()
    text = json.dumps(response)
    assert resp.status == 200 and response["allowed"] is allowed, text
    assert expected in text and "HTTPRoute" in text
    assert readyz.status == 503  # and kube-apiserver stops sending to a pod that is not ready


# ------------------------------------------------------------------ SIGTERM
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_sigterm_under_load_answers_every_review_sent_and_exits_in_the_grace_period(tmp_path: Path) -> None:
    """`serve --dev` gets SIGTERM mid-load: every review sent is answered; then new connections are refused."""
    (tmp_path / "policies").symlink_to(REPO / "policies")
    port = free_port()
    process = subprocess.Popen(  # noqa: ASYNC220 - starting it does not block; waiting is in a thread
        [sys.executable, "-m", "webhook", "serve", "--dev", "--port", str(port), "--shutdown-timeout", "5"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert f":{port}" in await asyncio.to_thread(process.stdout.readline)  # type: ignore[union-attr]
        context = ssl.create_default_context(cafile=str(tmp_path / "certs" / "dev" / "ca.crt"))

        async def terminate() -> float:
            await asyncio.sleep(1.0)
            process.send_signal(signal.SIGTERM)
            return time.monotonic()

        tally, sent_at = await asyncio.gather(
            run_load(f"https://127.0.0.1:{port}", context, ALLOWED, seconds=6.0, stop_on_refusal=True,
                     expect=lambda r: r.get("allowed") is True),
            terminate(),
        )
        code = await asyncio.to_thread(process.wait, 10)
        exited = time.monotonic() - sent_at
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
    tally.report("SIGTERM")
    # Every review the server began to receive was answered. The only losses allowed are the
    # race Go's own http.Server.Shutdown has too: a keep-alive connection idle at the signal
    # is closed at once, and a client writing its next review onto it at that very moment
    # sees the connection drop, after its request (a disconnect) or while writing it (Go's
    # client retries when it had written nothing). At most one per connection, only those,
    # never a wrong or 5xx answer.
    dropped = ("ServerDisconnectedError", "ClientOSError: [Errno None] Can not write request body")
    assert tally.failed <= CLIENTS and all(e.startswith(dropped) for e in tally.errors), tally.errors
    assert tally.answered == tally.sent - tally.failed > 20
    assert tally.refused == CLIENTS  # each client stopped only when the listener was gone
    assert code == 0 and exited < 5.0


def test_the_answer_under_load_shows_whether_the_view_was_intact() -> None:
    """The dev view and an empty one give different answers, so a view lost during a relist would show."""
    dev = judged_on(state_from_manifests(load_manifests([REPO / "policies" / "dev-state"])))
    assert dev["allowed"] is False and "NotAllowedByListeners" in dev["status"]["message"]
    assert judged_on(ClusterState()) != dev
