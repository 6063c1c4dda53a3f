"""Shared fixtures: certificates made by ``routewarden certs``, the app, a real HTTPS server."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from webhook.certs import CertificateFiles
from webhook.policy.loader import PolicyStore
from webhook.runtime import Runtime
from webhook.server import create_app, start
from webhook.state.store import ClusterState
from webhook.tls import CertificateReloader, server_context

REPO = Path(__file__).resolve().parents[1]
REVIEWS = REPO / ".." / "shared" / "admission-reviews"
SERVICE, NAMESPACE = "routewarden", "routewarden-system"


def admission_fixtures() -> list[tuple[str, dict[str, Any]]]:
    """``(name, index entry)`` for every captured review, in capture order."""
    index = json.loads((REVIEWS / "index.json").read_text())
    return sorted(index.items(), key=lambda item: item[1]["capture_order"])


def review_body(name: str) -> bytes:
    """The bytes kube-apiserver sent, unchanged."""
    index = json.loads((REVIEWS / "index.json").read_text())
    return (REVIEWS / index[name]["raw_file"]).read_bytes()


def make_certificates(directory: Path, *extra: str) -> CertificateFiles:
    """Run the real ``routewarden certs`` command into ``directory``."""
    subprocess.run(
        [sys.executable, "-m", "webhook", "certs", "--dir", str(directory),
         "--service", SERVICE, "--namespace", NAMESPACE, *extra],
        check=True, capture_output=True, cwd=REPO,
    )
    return CertificateFiles(directory)


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> CertificateFiles:
    return make_certificates(tmp_path_factory.mktemp("certs"))


def trusting(files: CertificateFiles) -> ssl.SSLContext:
    """A client context that trusts only our CA and checks the hostname, like kube-apiserver."""
    return ssl.create_default_context(cafile=str(files.ca_cert))


@pytest.fixture
def runtime() -> Runtime:
    """Policies with nothing configured and an offline, empty cluster view."""
    return Runtime(policies=PolicyStore(), state=ClusterState(), require_sync=False)


@pytest.fixture
def app(runtime: Runtime) -> web.Application:
    return create_app(runtime, policy_interval=None)


@pytest.fixture
async def client(aiohttp_client: Any, app: web.Application) -> Any:
    return await aiohttp_client(app)


@dataclass
class HttpsServer:
    url: str
    port: int
    app: web.Application
    files: CertificateFiles
    context: ssl.SSLContext


async def start_https(runtime: Runtime, files: CertificateFiles, *, client_ca: Path | None = None,
                      certificate_interval: float = 10.0) -> tuple[HttpsServer, web.AppRunner]:
    """The production wiring: create_app + TCPSite with the real SSLContext, on a free port."""
    context = server_context(files.cert, files.key, client_ca=client_ca)
    app = create_app(runtime, certificates=CertificateReloader(context, files.cert, files.key),
                     certificate_interval=certificate_interval, policy_interval=None)
    runner, port = await start(app, host="127.0.0.1", port=0, ssl_context=context, access_log=False)
    return HttpsServer(f"https://127.0.0.1:{port}", port, app, files, context), runner


@pytest.fixture
async def https_server(runtime: Runtime, certificates: CertificateFiles) -> AsyncIterator[HttpsServer]:
    server, runner = await start_https(runtime, certificates)
    yield server
    await runner.cleanup()


async def eventually(check: Callable[[], bool], what: str, *, timeout: float = 5.0, interval: float = 0.02) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for: {what}")
        await asyncio.sleep(interval)


def admission_review(obj: dict[str, Any] | None, *, operation: str = "CREATE",
                     old: dict[str, Any] | None = None) -> dict[str, Any]:
    """The AdmissionReview kube-apiserver would send a validating webhook for ``obj``."""
    from webhook.offline import synthesize_request

    request = synthesize_request(obj, operation=operation, old=old)
    gvk = {"group": request.kind.group, "version": request.kind.version, "kind": request.kind.kind}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": request.uid, "kind": gvk, "requestKind": gvk, "name": request.name,
        "resource": {"group": request.kind.group, "version": request.kind.version,
                     "resource": request.kind.kind.lower() + "s"},
        "namespace": request.namespace, "operation": operation,
        "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
        "object": obj, "oldObject": old, "dryRun": False,
        "options": {"kind": f"{operation.title()}Options", "apiVersion": "meta.k8s.io/v1"},
    }}


async def validate_over_https(runtime: Runtime, files: CertificateFiles, review: dict[str, Any]) -> dict[str, Any]:
    """POST ``review`` to ``/validate`` of a real HTTPS server on ``runtime``; the response part."""
    import aiohttp

    server, runner = await start_https(runtime, files)
    try:
        async with aiohttp.ClientSession() as session, session.post(
            f"{server.url}/validate?timeout=5s", json=review, ssl=trusting(server.files)
        ) as resp:
            assert resp.status == 200
            return (await resp.json())["response"]
    finally:
        await runner.cleanup()
