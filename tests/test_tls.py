"""The server SSLContext and the certificate reloader, through in-memory TLS handshakes."""

from __future__ import annotations

import shutil
import ssl
import warnings
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from webhook.certs import CertificateFiles, KeyPair, build_ca, build_serving_certificate, not_after
from webhook.tls import CertificateReloader, server_context


def handshake(server: ssl.SSLContext, client: ssl.SSLContext, *, hostname: str = "localhost") -> ssl.SSLObject:
    """A full TLS handshake over memory BIOs; returns the client side (peer cert, version, cipher)."""
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client_side = client.wrap_bio(c_in, c_out, server_hostname=hostname)
    server_side = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(10):
        for name, side in (("client", client_side), ("server", server_side)):
            if not done[name]:
                try:
                    side.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return client_side
    raise AssertionError("handshake did not finish")


def served_certificate(server: ssl.SSLContext, ca_pem: bytes) -> bytes:
    client = ssl.create_default_context(cadata=ca_pem.decode())
    der = handshake(server, client).getpeercert(binary_form=True)
    assert der is not None
    return der


def der(cert_pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(cert_pem).public_bytes(Encoding.DER)


def write_pair(files: CertificateFiles, pair: KeyPair) -> None:
    files.cert.write_bytes(pair.cert_pem)
    files.key.write_bytes(pair.key_pem)


@pytest.fixture
def ca() -> KeyPair:
    return build_ca()


@pytest.fixture
def files(tmp_path: Path, ca: KeyPair) -> CertificateFiles:
    files = CertificateFiles(tmp_path)
    files.ca_cert.write_bytes(ca.cert_pem)
    write_pair(files, build_serving_certificate(["localhost"], [], ca))
    return files


def test_the_context_negotiates_tls13_or_an_ecdhe_aead_tls12_cipher(files: CertificateFiles, ca: KeyPair) -> None:
    """Forced to TLS 1.2, the server picks forward-secret AEAD; by default TLS 1.3 is used."""
    server = server_context(files.cert, files.key)
    assert handshake(server, ssl.create_default_context(cadata=ca.cert_pem.decode())).version() == "TLSv1.3"
    client = ssl.create_default_context(cadata=ca.cert_pem.decode())
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    client.set_ciphers("ALL:@SECLEVEL=0")  # offer everything; the server must choose well
    cipher, version, _ = handshake(server, client).cipher()  # type: ignore[misc]
    assert version == "TLSv1.2"
    assert cipher.startswith("ECDHE-") and ("GCM" in cipher or "CHACHA20" in cipher), cipher


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_the_server_refuses_tls_older_than_1_2(files: CertificateFiles, ca: KeyPair, version: str) -> None:
    """The server side of the handshake rejects TLS 1.0 and 1.1 as an unsupported protocol."""
    client = ssl.create_default_context(cadata=ca.cert_pem.decode())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        client.minimum_version = client.maximum_version = getattr(ssl.TLSVersion, version)
    client.set_ciphers("ALL:@SECLEVEL=0")
    with pytest.raises(ssl.SSLError, match="UNSUPPORTED_PROTOCOL|unsupported protocol"):
        handshake(server_context(files.cert, files.key), client)


def test_a_tls12_client_offering_only_cbc_ciphers_is_refused(files: CertificateFiles, ca: KeyPair) -> None:
    """CBC and non-forward-secret suites are not accepted for TLS 1.2."""
    client = ssl.create_default_context(cadata=ca.cert_pem.decode())
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    client.set_ciphers("AES128-SHA:ECDHE-RSA-AES128-SHA")
    with pytest.raises(ssl.SSLError, match="HANDSHAKE_FAILURE|NO_SHARED_CIPHER|no shared cipher"):
        handshake(server_context(files.cert, files.key), client)


def test_an_unchanged_pair_is_not_reloaded(files: CertificateFiles, ca: KeyPair) -> None:
    """check() compares contents: identical bytes (even rewritten) are not a rotation."""
    context = server_context(files.cert, files.key)
    reloader = CertificateReloader(context, files.cert, files.key)
    files.cert.write_bytes(files.cert.read_bytes())
    assert reloader.check() is False
    assert reloader.reloads == 0


def test_a_rotated_pair_is_served_by_the_same_context(files: CertificateFiles, ca: KeyPair) -> None:
    """After check(), the same SSLContext presents the new certificate and notAfter follows it."""
    context = server_context(files.cert, files.key)
    reloader = CertificateReloader(context, files.cert, files.key)
    old = files.cert.read_bytes()
    assert served_certificate(context, ca.cert_pem) == der(old)
    new = build_serving_certificate(["localhost"], [], ca, days=30)
    write_pair(files, new)
    assert reloader.check() is True
    assert served_certificate(context, ca.cert_pem) == der(new.cert_pem)
    assert reloader.not_after == not_after(new.cert_pem)


def test_a_half_rotated_pair_keeps_the_old_certificate_until_the_key_arrives(
    files: CertificateFiles, ca: KeyPair
) -> None:
    """A new certificate with the old key fails to load; the old pair is served; the next check loads."""
    context = server_context(files.cert, files.key)
    reloader = CertificateReloader(context, files.cert, files.key)
    old = files.cert.read_bytes()
    new = build_serving_certificate(["localhost"], [], ca)
    files.cert.write_bytes(new.cert_pem)
    assert reloader.check() is False
    assert served_certificate(context, ca.cert_pem) == der(old)
    files.key.write_bytes(new.key_pem)
    assert reloader.check() is True
    assert served_certificate(context, ca.cert_pem) == der(new.cert_pem)


def test_missing_files_keep_the_old_certificate(files: CertificateFiles, ca: KeyPair, tmp_path: Path) -> None:
    """A Secret briefly unmounted does not break serving."""
    context = server_context(files.cert, files.key)
    reloader = CertificateReloader(context, files.cert, files.key)
    old = files.cert.read_bytes()
    shutil.move(files.cert, tmp_path / "away")
    assert reloader.check() is False
    assert served_certificate(context, ca.cert_pem) == der(old)


def test_client_ca_makes_a_client_certificate_required(files: CertificateFiles, ca: KeyPair) -> None:
    """With a client CA the server sets CERT_REQUIRED and trusts exactly that CA for clients."""
    context = server_context(files.cert, files.key, client_ca=files.ca_cert)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert server_context(files.cert, files.key).verify_mode == ssl.CERT_NONE
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
