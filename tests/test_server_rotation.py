"""A certificate rotated on disk (a mounted Secret's symlink swap) reaches new connections."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
from pathlib import Path
from typing import Any

from conftest import review_body, start_https, trusting
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from webhook.certs import CertificateFiles, KeyPair, build_ca, build_serving_certificate, not_after
from webhook.runtime import Runtime

JSON = {"Content-Type": "application/json"}


def mount_secret(directory: Path, pair: KeyPair, ca: KeyPair, version: int) -> None:
    """Lay out files as the kubelet does: tls.crt -> ..data/tls.crt, ..data -> ..<version>."""
    payload = directory / f"..{version}"
    payload.mkdir()
    (payload / "tls.crt").write_bytes(pair.cert_pem)
    (payload / "tls.key").write_bytes(pair.key_pem)
    (payload / "ca.crt").write_bytes(ca.cert_pem)
    (directory / "..data_tmp").symlink_to(payload.name)
    os.replace(directory / "..data_tmp", directory / "..data")  # the atomic swap
    for name in ("tls.crt", "tls.key", "ca.crt"):
        if not (directory / name).is_symlink():
            (directory / name).symlink_to(f"..data/{name}")


def der(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)


class Connection:
    """One TLS connection speaking HTTP/1.1 keep-alive by hand, so its identity is certain."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, context: ssl.SSLContext) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="localhost")
        return cls(reader, writer)

    @property
    def certificate(self) -> bytes:
        return self.writer.get_extra_info("ssl_object").getpeercert(binary_form=True)

    async def review(self) -> dict[str, Any]:
        body = review_body("httproute-create.validate")
        head = (f"POST /validate?timeout=5s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        self.writer.write(head.encode() + body)
        return json.loads(await self.response())

    async def metrics(self) -> str:
        self.writer.write(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: text/plain\r\n\r\n")
        return (await self.response()).decode()

    async def response(self) -> bytes:
        await self.writer.drain()
        status = await self.reader.readline()
        assert status.startswith(b"HTTP/1.1 200"), status
        length = 0
        while (line := await self.reader.readline()) != b"\r\n":
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
            assert not (name.lower() == "connection" and "close" in value.lower())
        return await self.reader.readexactly(length)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()


async def test_a_rotated_certificate_is_served_to_new_connections_only(runtime: Runtime, tmp_path: Path) -> None:
    """After the swap, a new connection sees the new certificate; an open keep-alive one keeps working."""
    ca = build_ca()
    old, new = (build_serving_certificate(["localhost"], ["127.0.0.1"], ca) for _ in range(2))
    mount_secret(tmp_path, old, ca, 1)
    files = CertificateFiles(tmp_path)
    server, runner = await start_https(runtime, files, certificate_interval=0.05)
    context = trusting(files)
    kept = await Connection.open(server.port, context)
    try:
        await kept.review()
        assert kept.certificate == der(old.cert_pem)

        mount_secret(tmp_path, new, ca, 2)
        for _ in range(100):  # the reloader polls every 50 ms
            fresh = await Connection.open(server.port, context)
            await fresh.review()
            served = fresh.certificate
            await fresh.close()
            if served == der(new.cert_pem):
                break
            await asyncio.sleep(0.05)
        assert served == der(new.cert_pem)

        # The connection opened before the swap still answers, over the same TLS session.
        assert (await kept.review())["response"]["allowed"] is True
        assert kept.certificate == der(old.cert_pem)
    finally:
        await kept.close()
        await runner.cleanup()


async def test_the_served_certificate_expiry_is_exported_and_follows_rotation(runtime: Runtime, tmp_path: Path) -> None:
    """/metrics shows the notAfter of the certificate being served, before and after a rotation."""
    ca = build_ca()
    old = build_serving_certificate(["localhost"], ["127.0.0.1"], ca, days=30)
    new = build_serving_certificate(["localhost"], ["127.0.0.1"], ca, days=90)
    mount_secret(tmp_path, old, ca, 1)
    files = CertificateFiles(tmp_path)
    server, runner = await start_https(runtime, files, certificate_interval=0.05)

    async def exported() -> float:
        connection = await Connection.open(server.port, trusting(files))
        text = await connection.metrics()
        await connection.close()
        [line] = [ln for ln in text.splitlines() if ln.startswith("routewarden_certificate_expiry_timestamp_seconds ")]
        return float(line.split()[1])

    try:
        assert await exported() == not_after(old.cert_pem).timestamp()
        mount_secret(tmp_path, new, ca, 2)
        for _ in range(100):
            if await exported() == not_after(new.cert_pem).timestamp():
                break
            await asyncio.sleep(0.05)
        assert await exported() == not_after(new.cert_pem).timestamp()
    finally:
        await runner.cleanup()
