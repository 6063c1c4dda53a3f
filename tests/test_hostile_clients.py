"""Slow and hostile clients are bounded by a timeout or a limit; everyone else is still answered.

Raw sockets on loopback against the real HTTPS server (production wiring, with a 1 s
keep-alive timeout instead of 120 s so the bounds show within a test). Counts and times
are bounded: at most 60 connections, each test a few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from conftest import review_body, trusting

from webhook.certs import CertificateFiles
from webhook.runtime import Runtime
from webhook.server import MAX_FIELD_SIZE, MAX_LINE_SIZE, create_app, start
from webhook.tls import server_context

KEEPALIVE = 1.0
BODY = review_body("httproute-create.validate")
UID = json.loads(BODY)["request"]["uid"]


@pytest.fixture
async def port(runtime: Runtime, certificates: CertificateFiles) -> AsyncIterator[int]:
    context = server_context(certificates.cert, certificates.key)
    runner, bound = await start(create_app(runtime, policy_interval=None), host="127.0.0.1", port=0,
                                ssl_context=context, access_log=False, keepalive_timeout=KEEPALIVE)
    yield bound
    await runner.cleanup()


async def tls(port: int, files: CertificateFiles) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, ssl=trusting(files), server_hostname="localhost")


def head(length: int, *, path: str = "/validate?timeout=5s", extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {length}\r\n\r\n").encode()


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """Everything the server sends until it closes; fails if it is still open after ``seconds``."""
    async def drain() -> bytes:
        data = b""
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            while chunk := await reader.read(65536):
                data += chunk
        return data
    return await asyncio.wait_for(drain(), seconds)


async def test_a_client_that_never_sends_a_request_is_closed_at_the_keepalive_timeout(
    port: int, certificates: CertificateFiles
) -> None:
    """TLS done, then silence: the server closes the connection after the keep-alive timeout."""
    reader, writer = await tls(port, certificates)
    started = time.monotonic()
    assert await closed_within(reader, KEEPALIVE + 3) == b""
    assert KEEPALIVE * 0.8 <= time.monotonic() - started < KEEPALIVE + 3
    writer.close()


async def test_headers_trickling_in_byte_by_byte_do_not_hold_the_connection_open(
    port: int, certificates: CertificateFiles
) -> None:
    """Slowloris: one header byte every 100 ms never completes a request and is cut off."""
    reader, writer = await tls(port, certificates)
    started = time.monotonic()

    async def trickle() -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            for byte in head(len(BODY)):
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.1)

    task = asyncio.create_task(trickle())
    try:
        await closed_within(reader, KEEPALIVE + 3)
    finally:
        task.cancel()
        writer.close()
    assert time.monotonic() - started < KEEPALIVE + 3


async def test_a_body_trickling_past_the_deadline_gets_a_408(port: int, certificates: CertificateFiles) -> None:
    """Headers on time, body too slow: answered 408 at ?timeout, not waited for."""
    reader, writer = await tls(port, certificates)
    writer.write(head(len(BODY), path="/validate?timeout=1s") + BODY[:50])
    started = time.monotonic()
    status = await asyncio.wait_for(reader.readline(), 3)
    assert status.startswith(b"HTTP/1.1 408"), status
    assert time.monotonic() - started < 1.5
    writer.close()


@pytest.mark.parametrize(("what", "request_bytes"), [
    ("request line", f"POST /validate?{'a' * (MAX_LINE_SIZE + 10)} HTTP/1.1\r\nHost: x\r\n\r\n".encode()),
    ("one header", f"POST /validate HTTP/1.1\r\nHost: x\r\nX-Big: {'b' * (MAX_FIELD_SIZE + 10)}\r\n\r\n".encode()),
    ("many headers", ("POST /validate HTTP/1.1\r\nHost: x\r\n" + "".join(f"X-{i}: v\r\n" for i in range(200))
                      + "\r\n").encode()),
])
async def test_oversized_headers_are_refused_before_any_handler_runs(
    port: int, certificates: CertificateFiles, what: str, request_bytes: bytes
) -> None:
    """A request line, a header or a header count over the limit gets a 4xx and the connection closes."""
    reader, writer = await tls(port, certificates)
    writer.write(request_bytes)
    answer = await closed_within(reader, 3)
    assert re.match(rb"HTTP/1\.[01] 4\d\d ", answer), (what, answer[:80])  # aiohttp answers parse errors in 1.0
    writer.close()


async def review_over(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> float:
    """Send one review on a keep-alive connection; the seconds until its answer."""
    started = time.monotonic()
    writer.write(head(len(BODY)) + BODY)
    status = await reader.readline()
    assert status.startswith(b"HTTP/1.1 200"), status
    length = 0
    while (line := await reader.readline()) != b"\r\n":
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    assert json.loads(await reader.readexactly(length))["response"]["uid"] == UID
    return time.monotonic() - started


async def test_reviews_are_answered_promptly_while_hostile_clients_hold_connections(
    port: int, certificates: CertificateFiles
) -> None:
    """20 idle TLS, 20 half-open TCP (no handshake), 10 slowloris and 5 slow bodies; a good client's 30 reviews stay fast."""
    held: list[Any] = []
    for _ in range(20):
        held.append(await tls(port, certificates))
    for _ in range(20):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"\x16\x03\x01")  # the first bytes of a ClientHello, then nothing
        held.append(sock)
    slow: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    for i in range(15):
        reader, writer = await tls(port, certificates)
        writer.write(head(len(BODY))[:20] if i < 10 else head(len(BODY)) + BODY[:10])
        slow.append((reader, writer))
    reader, writer = await tls(port, certificates)
    latencies = [await review_over(reader, writer) for _ in range(30)]
    answered = len(latencies)
    print(f"hostile: 55 connections held; good client sent 30, answered {answered}, failed {30 - answered}, "
          f"max latency {max(latencies) * 1000:.1f} ms")
    assert answered == 30 and max(latencies) < 0.5
    writer.close()
    for item in held:
        if isinstance(item, socket.socket):
            item.close()
        else:
            item[1].close()
    for _, w in slow:
        w.close()
