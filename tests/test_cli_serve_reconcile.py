"""``routewarden serve --kubeconfig --reconcile=...``: the process as deployed, against the fake kube-apiserver."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import REPO, make_certificates
from kubeapi import FakeKubeAPI
from test_cli_serve import free_port
from test_cli_serve_online import readyz
from test_reconciler import HOSTNAME, POLICY, SERVICE, annotation, generated_service, owners

GROUP = "gateway.networking.k8s.io"


def wait_until(check: Callable[[], bool], what: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if process.poll() is not None:
            pytest.fail(f"serve exited ({process.returncode}) before: {what}\n{process.stderr.read()}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for: {what}")
        time.sleep(0.1)


@pytest.fixture
def cluster(tmp_path: Path) -> FakeKubeAPI:
    api = FakeKubeAPI()
    api.register_watched()
    api.register_defaults()
    for name in ("infra", "routewarden"):
        api.create("Namespace", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    gateway = api.create("Gateway", {
        "apiVersion": f"{GROUP}/v1", "kind": "Gateway", "metadata": {"namespace": "infra", "name": "shared"},
        "spec": {"gatewayClassName": "cilium", "listeners": [
            {"name": "http", "port": 80, "protocol": "HTTP", "hostname": "*.example.com"}]}})
    created = api.create("Service", generated_service(gateway), manager="cilium-operator")
    created["metadata"]["annotations"] = {HOSTNAME: "old.example.com"}
    api.update("Service", created)
    return api


@pytest.mark.parametrize("mode", ["on", "off"])
def test_serve_reconciles_generated_services_only_when_asked(cluster: FakeKubeAPI, tmp_path: Path, mode: str) -> None:
    """--reconcile=on: the Service is applied by the elected process, which releases its Lease on SIGTERM.
    --reconcile=off: no Service watch, no Lease, no write."""
    files = make_certificates(tmp_path / "certs", "--host", "localhost", "--ip", "127.0.0.1")
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "services.yaml").write_text(POLICY.format(extra=""))
    with cluster.in_thread():
        kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "webhook", "serve", "--kubeconfig", str(kubeconfig), "--policies",
             str(tmp_path / "policies"), "--cert-dir", str(files.directory), "--address", "127.0.0.1",
             "--port", str(port), "--audit-interval", "0", f"--reconcile={mode}", "--reconcile-namespace=infra",
             "--reconcile-debounce=0.1"],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(REPO), "POD_NAMESPACE": "routewarden", "POD_NAME": "routewarden-0"},
        )
        context = ssl.create_default_context(cafile=str(files.ca_cert))

        def ready() -> bool:
            try:
                return readyz(port, context)[0] == 200
            except OSError:
                return False

        try:
            wait_until(ready, "ready", process)
            if mode == "on":
                wait_until(lambda: annotation(cluster) == "*.example.com", "the Service applied", process)
                assert owners(cluster) == {"routewarden"}
                lease = cluster.get("Lease", "routewarden", "routewarden-reconciler")
                assert lease["spec"]["holderIdentity"].startswith("routewarden-0_")
            else:
                time.sleep(1.0)
                assert annotation(cluster) == "old.example.com"
                assert not [c for c in cluster.calls if "/services" in c.path or "/leases" in c.path]
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(30) == 0, process.stderr.read()
        if mode == "on":
            assert cluster.get("Lease", "routewarden", "routewarden-reconciler")["spec"]["holderIdentity"] == ""
        assert cluster.get("Service", *SERVICE) is not None
