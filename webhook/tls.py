"""The server's TLS settings and certificate hot reload.

Certificates come from a mounted Secret (cert-manager or ``routewarden certs``). The
kubelet updates a mounted Secret by swapping a ``..data`` symlink, which gives no
dependable filesystem event, so :class:`CertificateReloader` reads the files on an
interval and compares their *contents*. A new pair is loaded into the same
:class:`ssl.SSLContext` with ``load_cert_chain``: OpenSSL copies the certificate into
each connection when it is created, so the next new connection gets the new
certificate while open keep-alive connections carry on with the old one. Nothing is
restarted and no in-flight review is dropped.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import os
import ssl
import tempfile
from collections.abc import Callable
from pathlib import Path

from .certs import not_after as certificate_not_after
from .logs import fields

log = logging.getLogger("routewarden.tls")

# TLS 1.2 only with forward secrecy and AEAD ciphers; TLS 1.3 suites are all modern already.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


def server_context(cert_file: str | Path, key_file: str | Path, *, client_ca: str | Path | None = None) -> ssl.SSLContext:
    """An SSLContext for serving: TLS 1.2 minimum, optionally requiring an apiserver client cert.

    With ``client_ca``, only clients presenting a certificate signed by it can connect
    (kube-apiserver does when given a kubeconfig for the webhook in its
    AdmissionConfiguration), so nothing else in the cluster can probe the webhook.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.load_cert_chain(str(cert_file), str(key_file))
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=str(client_ca))
    return context


def load_pair(context: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    """Load exactly these bytes into ``context``, or raise and leave it untouched.

    ``load_cert_chain`` on a live context is not atomic: with a certificate and a key
    that do not match (a Secret caught mid-update) OpenSSL has already replaced the
    certificate when the key is refused, and the context can no longer handshake. So the
    pair is tried on a scratch context first. Both loads read one private temporary file
    holding the bytes that were compared, so a file changing in between cannot slip in.
    """
    with tempfile.TemporaryDirectory(prefix="routewarden-tls-") as directory:
        combined = Path(directory) / "pair.pem"
        fd = os.open(combined, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(cert.rstrip(b"\n") + b"\n" + key)
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(str(combined))
        context.load_cert_chain(str(combined))


def _fingerprint(cert: bytes, key: bytes) -> str:
    return hashlib.sha256(cert + b"\0" + key).hexdigest()


class CertificateReloader:
    """Loads a changed certificate/key pair into a live SSLContext.

    Only :meth:`check` changes the context; a pair that fails to load (a half-swapped
    Secret, a key that does not match) is logged and retried at the next interval while
    the last good certificate keeps being served.
    """

    def __init__(self, context: ssl.SSLContext, cert_file: str | Path, key_file: str | Path) -> None:
        self.context = context
        self.cert_file = Path(cert_file)
        self.key_file = Path(key_file)
        cert, key = self._read()
        self._fingerprint = _fingerprint(cert, key)
        self.not_after: dt.datetime = certificate_not_after(cert)
        self.reloads = 0

    def _read(self) -> tuple[bytes, bytes]:
        return self.cert_file.read_bytes(), self.key_file.read_bytes()

    def check(self) -> bool:
        """Load the files if their contents changed; True when a new pair was loaded."""
        try:
            cert, key = self._read()
        except OSError as exc:
            log.warning("cannot read certificate files", extra=fields(error=str(exc)))
            return False
        fingerprint = _fingerprint(cert, key)
        if fingerprint == self._fingerprint:
            return False
        try:
            expiry = certificate_not_after(cert)
            load_pair(self.context, cert, key)
        except (ssl.SSLError, OSError, ValueError) as exc:
            log.warning("new certificate not loaded, still serving the previous one",
                        extra=fields(error=str(exc), cert_file=str(self.cert_file)))
            return False
        self._fingerprint = fingerprint
        self.not_after = expiry
        self.reloads += 1
        log.info("serving certificate reloaded",
                 extra=fields(cert_file=str(self.cert_file), not_after=expiry.isoformat()))
        return True

    async def watch(self, interval: float, *, on_load: Callable[[dt.datetime], None] | None = None) -> None:
        """Check every ``interval`` seconds until cancelled; ``on_load`` gets each notAfter."""
        if on_load is not None:
            on_load(self.not_after)
        while True:
            await asyncio.sleep(interval)
            if self.check() and on_load is not None:
                on_load(self.not_after)
