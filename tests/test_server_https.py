"""The real server over real HTTPS: who can connect, with what, and what they get back."""

from __future__ import annotations

import asyncio
import json
import ssl
import warnings
from pathlib import Path

import aiohttp
import pytest
from conftest import NAMESPACE, SERVICE, HttpsServer, review_body, start_https, trusting

from webhook.certs import CertificateFiles, KeyPair, build_ca, build_client_certificate
from webhook.runtime import Runtime

HEADERS = {"Content-Type": "application/json", "User-Agent": "kube-apiserver-admission"}


async def post_review(url: str, context: ssl.SSLContext, *, server_hostname: str | None = None) -> dict:
    async with aiohttp.ClientSession() as session, session.post(
        f"{url}/validate?timeout=5s", data=review_body("httproute-create.validate"),
        headers=HEADERS, ssl=context, server_hostname=server_hostname,
    ) as resp:
        assert resp.status == 200
        return await resp.json()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_a_client_trusting_only_our_ca_gets_an_answer(https_server: HttpsServer, host: str) -> None:
    """A client with only our CA, verifying the name it dialled (IP or DNS SAN), is answered."""
    url = f"https://{host}:{https_server.port}"
    review = await post_review(url, trusting(https_server.files))
    uid = json.loads(review_body("httproute-create.validate"))["request"]["uid"]
    assert review["response"] == {"uid": uid, "allowed": True}


@pytest.mark.parametrize("name", [f"{SERVICE}.{NAMESPACE}.svc", f"{SERVICE}.{NAMESPACE}.svc.cluster.local"])
async def test_the_service_dns_names_verify_like_kube_apiserver_dials_them(https_server: HttpsServer, name: str) -> None:
    """kube-apiserver dials <service>.<namespace>.svc and checks that SAN; it is in the certificate."""
    review = await post_review(https_server.url, trusting(https_server.files), server_hostname=name)
    assert review["kind"] == "AdmissionReview"


async def test_a_name_not_in_the_certificate_fails_verification(https_server: HttpsServer) -> None:
    """Hostname verification is real: another Service's name is refused."""
    with pytest.raises(aiohttp.ClientConnectorCertificateError, match="[Hh]ostname mismatch|doesn't match"):
        await post_review(https_server.url, trusting(https_server.files), server_hostname="other.routewarden-system.svc")


async def test_a_client_that_does_not_trust_our_ca_fails_the_handshake(https_server: HttpsServer) -> None:
    """The system trust store does not know our CA, so verification fails."""
    with pytest.raises(aiohttp.ClientConnectorCertificateError, match="CERTIFICATE_VERIFY_FAILED"):
        await post_review(https_server.url, ssl.create_default_context())


def tls_client(files: CertificateFiles, version: ssl.TLSVersion) -> ssl.SSLContext:
    context = trusting(files)
    with warnings.catch_warnings():  # Python deprecates choosing TLS 1.0/1.1, which is the point here
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = version
        context.maximum_version = version
    context.set_ciphers("ALL:@SECLEVEL=0")  # so the client side is able to offer old protocols
    return context


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1], ids=["TLS1.0", "TLS1.1"])
async def test_tls_older_than_1_2_is_refused_by_the_server(https_server: HttpsServer, version: ssl.TLSVersion) -> None:
    """A TLS 1.0 or 1.1 client cannot complete a handshake (asyncio drops it without an alert)."""
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        await asyncio.open_connection("127.0.0.1", https_server.port, server_hostname="localhost",
                                      ssl=tls_client(https_server.files, version))


async def test_the_same_permissive_client_succeeds_with_tls_1_2(https_server: HttpsServer) -> None:
    """The control for the test above: only the protocol version made it fail."""
    review = await post_review(https_server.url, tls_client(https_server.files, ssl.TLSVersion.TLSv1_2))
    assert review["response"]["allowed"] is True


@pytest.fixture
async def mutual_tls_server(runtime: Runtime, certificates: CertificateFiles):  # type: ignore[no-untyped-def]
    server, runner = await start_https(runtime, certificates, client_ca=certificates.ca_cert)
    yield server
    await runner.cleanup()


def with_client_certificate(files: CertificateFiles, tmp_path: Path, ca: KeyPair) -> ssl.SSLContext:
    pair = build_client_certificate("kube-apiserver", ca)
    (tmp_path / "client.crt").write_bytes(pair.cert_pem)
    (tmp_path / "client.key").write_bytes(pair.key_pem)
    context = trusting(files)
    context.load_cert_chain(tmp_path / "client.crt", tmp_path / "client.key")
    return context


async def test_with_a_client_ca_the_apiserver_certificate_is_accepted(
    mutual_tls_server: HttpsServer, tmp_path: Path
) -> None:
    """--client-ca: a client certificate signed by that CA is let in."""
    files = mutual_tls_server.files
    ca = KeyPair(files.ca_cert.read_bytes(), files.ca_key.read_bytes())
    review = await post_review(mutual_tls_server.url, with_client_certificate(files, tmp_path, ca))
    assert review["response"]["allowed"] is True


async def test_with_a_client_ca_a_client_without_a_certificate_is_refused(mutual_tls_server: HttpsServer) -> None:
    """--client-ca: no client certificate, no answer."""
    with pytest.raises((aiohttp.ClientError, ssl.SSLError)):
        await post_review(mutual_tls_server.url, trusting(mutual_tls_server.files))


async def test_with_a_client_ca_a_certificate_from_another_ca_is_refused(
    mutual_tls_server: HttpsServer, tmp_path: Path
) -> None:
    """--client-ca: a certificate from some other CA is not enough."""
    with pytest.raises((aiohttp.ClientError, ssl.SSLError)):
        await post_review(mutual_tls_server.url, with_client_certificate(mutual_tls_server.files, tmp_path, build_ca()))
