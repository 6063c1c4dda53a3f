"""``routewarden serve --kubeconfig``: the online view starts empty and readiness waits for it."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml
from conftest import REPO, make_certificates
from kubeapi import FakeKubeAPI
from test_cli_serve import free_port

from webhook.state.kinds import WATCHED_KINDS


def readyz(port: int, context: ssl.SSLContext) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/readyz", context=context, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_an_online_server_is_not_ready_until_its_watches_have_listed(tmp_path: Path) -> None:
    """A slow API server keeps /readyz at 503 naming the kinds not synced; it turns 200 after the lists."""
    files = make_certificates(tmp_path / "certs", "--host", "localhost", "--ip", "127.0.0.1")
    api = FakeKubeAPI()
    api.register_watched()
    api.create("Namespace", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "infra"}})
    with api.in_thread():
        api.delay = 1.5  # every answer, discovery and lists included, takes this long
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": api.url}}],
            "users": [{"name": "fake", "user": {"token": "t"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
        }))
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "webhook", "serve", "--kubeconfig", str(kubeconfig), "--policies",
             str(REPO / "policies"), "--cert-dir", str(files.directory), "--address", "127.0.0.1",
             "--port", str(port), "--audit-interval", "0"],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        context = ssl.create_default_context(cafile=str(files.ca_cert))
        try:
            answers = []
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    answers.append(readyz(port, context))
                except OSError:
                    time.sleep(0.1)  # not listening yet
                    continue
                if answers[-1][0] == 200:
                    break
                time.sleep(0.2)
            assert answers, process.stderr.read() if process.poll() is not None else "no answer"
            status, body = answers[0]
            assert status == 503 and "cluster view not synced" in " ".join(body["problems"]), answers[0]
            assert answers[-1][0] == 200, answers[-1]
            pending = " ".join(body["problems"])
            assert all(kind.kind in pending for kind in WATCHED_KINDS[:3]), pending
        finally:
            process.terminate()
            process.wait(30)
