"""Certificates for the webhook's HTTPS endpoint, made with ``cryptography``.

kube-apiserver only calls a webhook over HTTPS and verifies the serving certificate
against the ``caBundle`` of the webhook configuration, including its hostname: the
certificate must carry the Service DNS name the apiserver dials
(``<service>.<namespace>.svc``) as a subjectAltName. These are plain functions that
return PEM bytes, so they are tested directly and reused by ``routewarden certs``,
``serve --dev`` and the tests.

ECDSA P-256 is the default key: small, fast to handshake and accepted by every
supported Kubernetes version. RSA 2048 is there for environments that require it.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KeyType = Literal["ecdsa", "rsa"]
KEY_TYPES: tuple[KeyType, ...] = ("ecdsa", "rsa")
LOCAL_HOSTNAMES = ("localhost",)
LOCAL_IPS = ("127.0.0.1", "::1")
# Clocks on nodes drift; a certificate valid from "now" fails on a node a minute behind.
_BACKDATE = dt.timedelta(minutes=5)

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A certificate and its private key, both PEM."""

    cert_pem: bytes
    key_pem: bytes


def _new_key(key_type: KeyType) -> PrivateKey:
    if key_type == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"key type must be one of {KEY_TYPES}, not {key_type!r}")


def _key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _load_key(pem: bytes) -> PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise TypeError("the CA key must be an ECDSA or RSA key")
    return key


def _validity(builder: x509.CertificateBuilder, days: int, now: dt.datetime | None) -> x509.CertificateBuilder:
    now = now or dt.datetime.now(dt.UTC)
    return builder.not_valid_before(now - _BACKDATE).not_valid_after(now + dt.timedelta(days=days))


def build_ca(
    common_name: str = "routewarden webhook CA",
    *,
    key_type: KeyType = "ecdsa",
    days: int = 3650,
    now: dt.datetime | None = None,
) -> KeyPair:
    """A self-signed CA that may only sign leaf certificates (pathLen 0), valid from ``now``."""
    key = _new_key(key_type)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
    )
    cert = _validity(builder, days, now).sign(key, hashes.SHA256())
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _leaf(
    subject: str,
    *,
    ca: KeyPair,
    usage: x509.ObjectIdentifier,
    san: list[x509.GeneralName],
    key_type: KeyType,
    days: int,
    now: dt.datetime | None = None,
) -> KeyPair:
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = _load_key(ca.key_pem)
    key = _new_key(key_type)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False,
                key_encipherment=isinstance(key, rsa.RSAPrivateKey), data_encipherment=False,
                key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    if san:
        # The subject CN is ignored by Go's TLS stack: the SAN is what kube-apiserver checks.
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    cert = _validity(builder, days, now).sign(ca_key, hashes.SHA256())
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def build_serving_certificate(
    hostnames: Iterable[str],
    ips: Iterable[str],
    ca: KeyPair,
    *,
    key_type: KeyType = "ecdsa",
    days: int = 365,
    now: dt.datetime | None = None,
) -> KeyPair:
    """A server certificate signed by ``ca`` for these DNS names and IP addresses, valid from ``now``."""
    names = list(dict.fromkeys(hostnames))
    addresses = [ipaddress.ip_address(ip) for ip in dict.fromkeys(ips)]
    if not names and not addresses:
        raise ValueError("a serving certificate needs at least one hostname or IP address")
    san: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    san += [x509.IPAddress(a) for a in addresses]
    subject = names[0] if names else str(addresses[0])
    return _leaf(subject, ca=ca, usage=ExtendedKeyUsageOID.SERVER_AUTH, san=san, key_type=key_type, days=days,
                 now=now)


def build_client_certificate(
    common_name: str, ca: KeyPair, *, key_type: KeyType = "ecdsa", days: int = 365
) -> KeyPair:
    """A client certificate, as kube-apiserver presents with ``--admission-control-config-file``."""
    return _leaf(common_name, ca=ca, usage=ExtendedKeyUsageOID.CLIENT_AUTH, san=[], key_type=key_type, days=days)


def service_hostnames(service: str, namespace: str, *, cluster_domain: str = "cluster.local") -> list[str]:
    """Every DNS name a Service is reachable as; kube-apiserver dials ``<svc>.<ns>.svc``."""
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.{cluster_domain}",
    ]


def ca_bundle(ca_cert_pem: bytes) -> str:
    """The ``caBundle`` value of a webhook configuration: the CA PEM, base64-encoded."""
    return base64.b64encode(ca_cert_pem).decode("ascii")


def not_after(cert_pem: bytes) -> dt.datetime:
    """When the (first) certificate in ``cert_pem`` expires, in UTC."""
    return x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc


def _write(path: Path, data: bytes, *, secret: bool) -> None:
    """Write atomically; key material is created 0600 so it is never readable by others."""
    mode = 0o600 if secret else 0o644
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


@dataclass(frozen=True, slots=True)
class CertificateFiles:
    """Where ``routewarden certs`` puts things (the names of a ``kubernetes.io/tls`` Secret)."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def cert(self) -> Path:
        return self.directory / "tls.crt"

    @property
    def key(self) -> Path:
        return self.directory / "tls.key"

    def complete(self) -> bool:
        return all(p.is_file() for p in (self.ca_cert, self.ca_key, self.cert, self.key))


def write_certificates(
    directory: str | Path,
    *,
    hostnames: Iterable[str],
    ips: Iterable[str],
    key_type: KeyType = "ecdsa",
    days: int = 365,
) -> tuple[CertificateFiles, KeyPair]:
    """Write a serving pair to ``directory``, reusing the CA found there (else making one).

    Reusing the CA means re-running rotates the serving certificate without changing the
    ``caBundle`` already in the webhook configurations. Returns the files and the CA.
    """
    files = CertificateFiles(Path(directory))
    files.directory.mkdir(parents=True, exist_ok=True)
    if files.ca_cert.is_file() and files.ca_key.is_file():
        ca = KeyPair(files.ca_cert.read_bytes(), files.ca_key.read_bytes())
    else:
        ca = build_ca(key_type=key_type)
        _write(files.ca_key, ca.key_pem, secret=True)
        _write(files.ca_cert, ca.cert_pem, secret=False)
    serving = build_serving_certificate(hostnames, ips, ca, key_type=key_type, days=days)
    # Key first: a reloader that sees the new cert with the old key fails to load and retries.
    _write(files.key, serving.key_pem, secret=True)
    _write(files.cert, serving.cert_pem, secret=False)
    return files, ca
