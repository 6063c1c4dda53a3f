"""``routewarden serve`` as a real process: dev mode, graceful shutdown on SIGTERM, and errors."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, review_body

from webhook import __version__

EXAMPLE = REPO / "examples" / "reviews" / "httproute-create.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """``routewarden serve --dev`` in a scratch directory holding the repository's policies."""
    (tmp_path / "policies").symlink_to(REPO / "policies")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "webhook", "serve", "--dev", "--port", str(port), "--shutdown-timeout", "5"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        banner = process.stdout.readline()  # type: ignore[union-attr]
        assert f"https://127.0.0.1:{port}" in banner, process.stderr.read() if process.poll() is not None else banner
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def dev_context(tmp_path: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tmp_path / "certs" / "dev" / "ca.crt"))


class Http:
    """HTTP/1.1 keep-alive over one TLS connection, by hand, to control timing exactly."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, context: ssl.SSLContext) -> Http:
        return cls(*await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="localhost"))

    def send_head(self, path: str, length: int) -> None:
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {length}\r\n\r\n".encode())

    async def response(self) -> tuple[int, dict[str, str], bytes]:
        status = int((await self.reader.readline()).split()[1])
        headers: dict[str, str] = {}
        while (line := (await self.reader.readline()).decode()) != "\r\n":
            name, _, value = line.partition(":")
            headers[name.lower()] = value.strip()
        return status, headers, await self.reader.readexactly(int(headers["content-length"]))


async def test_the_dev_server_answers_the_readme_example_and_is_ready(
    dev_server: tuple[subprocess.Popen[str], int], tmp_path: Path
) -> None:
    """--dev makes its own certificates, is ready without a cluster and answers the example review."""
    _, port = dev_server
    http = await Http.open(port, dev_context(tmp_path))
    body = EXAMPLE.read_bytes()
    http.send_head("/validate?timeout=10s", len(body))
    http.writer.write(body)
    status, _, answer = await http.response()
    assert status == 200
    assert json.loads(answer)["response"]["uid"] == json.loads(body)["request"]["uid"]
    http.writer.write(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\n\r\n")
    status, _, answer = await http.response()
    assert status == 200, answer
    http.writer.close()
    for name in ("ca.key", "tls.key"):
        assert (tmp_path / "certs" / "dev" / name).stat().st_mode & 0o777 == 0o600


async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.read()
    except (ConnectionError, ssl.SSLError):
        return b""


async def test_sigterm_finishes_in_flight_reviews_closes_idle_connections_and_exits_0(
    dev_server: tuple[subprocess.Popen[str], int], tmp_path: Path
) -> None:
    """On SIGTERM: no new connections, idle keep-alives closed at once, the review in flight answered, exit 0."""
    process, port = dev_server
    context = dev_context(tmp_path)
    body = review_body("httproute-create.validate")

    idle = await Http.open(port, context)
    idle.send_head("/validate", len(body))
    idle.writer.write(body)
    assert (await idle.response())[0] == 200  # now an idle keep-alive connection

    busy = await Http.open(port, context)
    busy.send_head("/validate?timeout=10s", len(body))
    busy.writer.write(body[:200])  # the review is in flight: the handler waits for the rest
    await busy.writer.drain()
    await asyncio.sleep(0.3)

    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(read_until_closed(idle.reader), 2.0) == b""  # closed promptly
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="localhost")

    busy.writer.write(body[200:])
    status, headers, answer = await asyncio.wait_for(busy.response(), 3.0)
    assert status == 200 and headers.get("connection") == "close"
    assert json.loads(answer)["response"]["uid"] == json.loads(body)["request"]["uid"]

    assert await asyncio.to_thread(process.wait, 5.0) == 0
    assert time.monotonic() - sent < 5.0
    logs = [json.loads(line) for line in process.stderr.read().splitlines() if line.startswith("{")]  # type: ignore[union-attr]
    assert any(line["message"] == "shutting down" for line in logs)


def run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "webhook", *args], check=False, capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)


def test_version_prints_the_package_version() -> None:
    """`routewarden version` prints the distribution's version."""
    result = run_cli("version")
    assert result.returncode == 0 and result.stdout == f"routewarden {__version__}\n"


def test_serve_without_certificates_explains_instead_of_crashing(tmp_path: Path) -> None:
    """A missing certificate directory exits 2 with a hint, not a traceback."""
    result = run_cli("serve", "--cert-dir", str(tmp_path / "none"), "--policies", str(REPO / "policies"),
                     "--port", str(free_port()))
    assert result.returncode == 2
    assert "cannot load the serving certificate" in result.stderr and "Traceback" not in result.stderr


def test_every_subcommand_has_help() -> None:
    """The registry's subcommands all show up in --help."""
    result = run_cli("--help")
    assert result.returncode == 0
    assert re.search(r"serve.*\n.*certs.*\n.*version", result.stdout, re.DOTALL)


def test_shutdown_reads_the_request_state_aiohttp_keeps_on_each_connection() -> None:
    """Shutdown tells an idle connection from one with a request aiohttp has read but not yet handed to a handler
    by two attributes of aiohttp's RequestHandler; an aiohttp that renamed them would make every such connection
    look idle (and be closed mid-request), so their presence is checked here."""
    from aiohttp.web_protocol import RequestHandler

    from webhook.handlers import Lifecycle
    from webhook.server import _idle

    class Connection:  # the two attributes, hashable as aiohttp's handlers are
        def __init__(self, messages: list[str], in_progress: bool) -> None:
            self._messages, self._request_in_progress = messages, in_progress

    assert {"_messages", "_request_in_progress"} <= set(RequestHandler.__slots__)
    lifecycle = Lifecycle()
    assert _idle(Connection([], False), lifecycle)
    assert not _idle(Connection(["a request"], False), lifecycle)
    assert not _idle(Connection([], True), lifecycle)
    counted = Connection([], False)
    lifecycle.begin(counted)
    assert not _idle(counted, lifecycle)
