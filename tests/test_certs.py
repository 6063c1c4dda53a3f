"""Certificates: CA, serving certificate SANs, key types, file modes and the certs command."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import NAMESPACE, REPO, SERVICE
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from webhook.certs import (
    CertificateFiles,
    build_ca,
    build_client_certificate,
    build_serving_certificate,
    service_hostnames,
)


def load(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def sans(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return ext.get_values_for_type(x509.DNSName), [str(i) for i in ext.get_values_for_type(x509.IPAddress)]


def test_the_ca_is_a_ca_limited_to_signing_leaves() -> None:
    """build_ca makes a self-signed CA with pathLen 0 and certificate signing usage."""
    ca = load(build_ca().cert_pem)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca is True and constraints.path_length == 0
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    ca.verify_directly_issued_by(ca)


@pytest.mark.parametrize(("key_type", "key_class"), [("ecdsa", ec.EllipticCurvePublicKey), ("rsa", rsa.RSAPublicKey)])
def test_a_serving_certificate_is_signed_by_the_ca_with_its_names(key_type: str, key_class: type) -> None:
    """The serving certificate chains to the CA and lists every hostname and IP as a SAN."""
    ca = build_ca(key_type=key_type)  # type: ignore[arg-type]
    pair = build_serving_certificate(["a.example", "b.example"], ["127.0.0.1", "::1"], ca, key_type=key_type)  # type: ignore[arg-type]
    cert = load(pair.cert_pem)
    cert.verify_directly_issued_by(load(ca.cert_pem))
    assert isinstance(cert.public_key(), key_class)
    assert sans(cert) == (["a.example", "b.example"], ["127.0.0.1", "::1"])
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


def test_ecdsa_uses_p256_by_default() -> None:
    """The default key is ECDSA on P-256."""
    key = load(build_serving_certificate(["x"], [], build_ca()).cert_pem).public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"


def test_validity_starts_before_now_to_tolerate_clock_skew() -> None:
    """notBefore is a few minutes in the past and notAfter is the requested days ahead."""
    cert = load(build_serving_certificate(["x"], [], build_ca(), days=30).cert_pem)
    now = dt.datetime.now(dt.UTC)
    assert cert.not_valid_before_utc < now - dt.timedelta(minutes=1)
    assert abs(cert.not_valid_after_utc - (now + dt.timedelta(days=30))) < dt.timedelta(minutes=1)


def test_a_certificate_needs_a_name() -> None:
    """No hostnames and no IPs is refused rather than making a certificate nobody can verify."""
    with pytest.raises(ValueError, match="at least one"):
        build_serving_certificate([], [], build_ca())


def test_a_client_certificate_is_for_client_auth_only() -> None:
    """The client certificate (for apiserver authentication tests) has only clientAuth usage."""
    cert = load(build_client_certificate("kube-apiserver", build_ca()).cert_pem)
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH
    ]


def test_service_hostnames_cover_every_form_the_apiserver_may_dial() -> None:
    """svc, svc.ns, svc.ns.svc and the fully qualified cluster name."""
    assert service_hostnames("rw", "ops") == ["rw", "rw.ops", "rw.ops.svc", "rw.ops.svc.cluster.local"]


def test_the_certs_command_writes_the_pair_with_private_keys_0600(certificates: CertificateFiles) -> None:
    """ca.crt, ca.key, tls.crt, tls.key exist; keys are readable by their owner only."""
    for path in (certificates.ca_key, certificates.key):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for path in (certificates.ca_cert, certificates.cert):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
    dns, ips = sans(load(certificates.cert.read_bytes()))
    assert set(service_hostnames(SERVICE, NAMESPACE)) <= set(dns)
    assert "localhost" in dns and {"127.0.0.1", "::1"} <= set(ips)
    load(certificates.cert.read_bytes()).verify_directly_issued_by(load(certificates.ca_cert.read_bytes()))


def run_certs(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "webhook", "certs", "--dir", str(directory), *args],
                          check=False, capture_output=True, text=True, cwd=REPO)


def test_the_certs_command_prints_the_ca_bundle_and_keeps_the_ca_on_rerun(tmp_path: Path) -> None:
    """stdout is base64 of ca.crt; running again rotates tls.crt but keeps the CA (and caBundle)."""
    first = run_certs(tmp_path, "--host", "webhook.example", "--ip", "10.0.0.7")
    assert first.returncode == 0, first.stderr
    files = CertificateFiles(tmp_path)
    assert base64.b64decode(first.stdout.strip()) == files.ca_cert.read_bytes()
    dns, ips = sans(load(files.cert.read_bytes()))
    assert "webhook.example" in dns and "10.0.0.7" in ips
    old_cert = files.cert.read_bytes()
    second = run_certs(tmp_path)
    assert second.stdout == first.stdout
    assert files.cert.read_bytes() != old_cert
    load(files.cert.read_bytes()).verify_directly_issued_by(load(files.ca_cert.read_bytes()))


@pytest.mark.parametrize(("args", "message"), [
    (["--service", "rw"], "--service and --namespace go together"),
    (["--ip", "not-an-ip"], "does not appear to be an IPv4 or IPv6 address"),
])
def test_the_certs_command_refuses_bad_arguments(tmp_path: Path, args: list[str], message: str) -> None:
    """Incomplete or malformed names exit 2 with a message and no traceback."""
    result = run_certs(tmp_path, *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_ip_addresses_are_encoded_as_ip_sans_not_dns_names() -> None:
    """An IP is an iPAddress SAN (Go's TLS ignores IPs written as DNS names)."""
    cert = load(build_serving_certificate([], ["192.0.2.10"], build_ca()).cert_pem)
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ext.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("192.0.2.10")]
    assert ext.get_values_for_type(x509.DNSName) == []
