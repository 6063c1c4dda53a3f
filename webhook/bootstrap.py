"""Self-managed certificates: routewarden issues, shares and rotates its own serving certificate.

For clusters without cert-manager (``serve --self-managed-certs``, deploy/overlays/self-managed).
One Secret in routewarden's namespace is the shared copy of a private CA and the serving
certificate it signs; every replica reconciles against it, at start and then on an interval:

1. Read the Secret. If it is missing, issue a CA and a serving certificate and *create* it:
   when several replicas start together exactly one create succeeds, the others get 409
   AlreadyExists and read the winner's. No lease is needed, and no extra RBAC for one.
2. If less than a third of the serving certificate's lifetime remains (or of the CA's, or
   the certificate no longer names the Service), issue a new one and *update* the Secret
   with its resourceVersion as precondition: one replica wins, the others get 409 Conflict,
   read it again and adopt the winner's. Renewing the serving certificate keeps the CA, so the
   caBundle does not change. Renewing the CA keeps the old CA in the bundle until it
   expires, so replicas still serving a certificate of the old CA stay trusted.
3. Patch the bundle into the webhook configurations (by name) where it differs, *before*
   writing new files, so kube-apiserver trusts a certificate before anyone serves it.
4. Write ``tls.crt``, ``tls.key`` and ``ca.crt`` into the cert dir; the server's
   certificate reloader picks them up. The CA key stays in the Secret only.

The decisions (what is due, what to issue) are pure functions of the Secret's contents and
the time, tested directly; :func:`reconcile` does the I/O with the ``kubernetes`` client.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import datetime as dt
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .certs import (
    CertificateFiles,
    KeyPair,
    build_ca,
    build_serving_certificate,
    ca_bundle,
    service_hostnames,
)
from .logs import fields

log = logging.getLogger("routewarden.bootstrap")

Clock = Callable[[], dt.datetime]
Background = Callable[[], Awaitable[None]]
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
# Renew when less than this fraction of a certificate's lifetime remains.
RENEW_FRACTION = 1 / 3
CA_KEYS = ("ca.crt", "ca.key", "tls.crt", "tls.key")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class Target:
    """What routewarden manages for itself: one Secret, one Service name, one configuration name."""

    namespace: str
    secret: str = "routewarden-tls"
    service: str = "routewarden"
    webhook_configuration: str = "routewarden"
    ca_days: int = 3650
    serving_days: int = 90

    @property
    def hostnames(self) -> list[str]:
        return service_hostnames(self.service, self.namespace)


@dataclass(frozen=True, slots=True)
class Bundle:
    """The Secret's contents: the signing CA, the CAs to trust, and the serving pair."""

    ca: KeyPair
    trusted: bytes  # caBundle PEM: the current CA first, then a previous one still valid
    serving: KeyPair


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one reconcile did, for logs and tests."""

    bundle: Bundle
    created: bool = False
    rotated: bool = False
    patched: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    files_changed: bool = False


# --------------------------------------------------------------------------- decisions
def due(cert_pem: bytes, *, now: dt.datetime) -> bool:
    """Whether less than a third of this certificate's lifetime remains (or it is unreadable)."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        return True
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    return cert.not_valid_after_utc - now < lifetime * RENEW_FRACTION


def names_service(cert_pem: bytes, hostnames: list[str]) -> bool:
    """Whether the serving certificate carries every DNS name kube-apiserver may dial."""
    try:
        san = x509.load_pem_x509_certificate(cert_pem).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (ValueError, x509.ExtensionNotFound):
        return False
    return set(hostnames) <= set(san.value.get_values_for_type(x509.DNSName))


def needs_renewal(bundle: Bundle, target: Target, *, now: dt.datetime) -> bool:
    return (due(bundle.serving.cert_pem, now=now) or due(bundle.ca.cert_pem, now=now)
            or not names_service(bundle.serving.cert_pem, target.hostnames))


def usable(bundle: Bundle, target: Target, *, now: dt.datetime) -> bool:
    """Good enough to adopt after losing a renewal race: valid now and naming the Service."""
    return _still_valid(bundle.serving.cert_pem, now) and names_service(bundle.serving.cert_pem, target.hostnames)


def _still_valid(cert_pem: bytes, now: dt.datetime) -> bool:
    try:
        return x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc > now
    except ValueError:
        return False


def issue(target: Target, *, previous: Bundle | None, now: dt.datetime) -> Bundle:
    """A new serving certificate, from the previous CA unless that CA is itself due."""
    if previous is not None and not due(previous.ca.cert_pem, now=now):
        ca, trusted = previous.ca, previous.trusted
    else:
        ca = build_ca(days=target.ca_days, now=now)
        trusted = ca.cert_pem
        if previous is not None and _still_valid(previous.ca.cert_pem, now):
            trusted += previous.ca.cert_pem  # still signs what other replicas serve
    serving = build_serving_certificate(target.hostnames, [], ca, days=target.serving_days, now=now)
    return Bundle(ca=ca, trusted=trusted, serving=serving)


def to_secret(bundle: Bundle, target: Target) -> dict[str, Any]:
    values = {"ca.crt": bundle.trusted, "ca.key": bundle.ca.key_pem,
              "tls.crt": bundle.serving.cert_pem, "tls.key": bundle.serving.key_pem}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": target.secret, "namespace": target.namespace,
                     "labels": {"app.kubernetes.io/name": "routewarden",
                                "app.kubernetes.io/managed-by": "routewarden"}},
        "data": {k: base64.b64encode(v).decode("ascii") for k, v in values.items()},
    }


def from_secret(secret: dict[str, Any]) -> Bundle | None:
    """The bundle a Secret holds, or None when it is incomplete (then it is reissued)."""
    data = secret.get("data") or {}
    if not all(data.get(k) for k in CA_KEYS):
        return None
    raw = {k: base64.b64decode(data[k]) for k in CA_KEYS}
    try:  # the signing CA is the first certificate of the bundle
        signing = x509.load_pem_x509_certificates(raw["ca.crt"])[0].public_bytes(serialization.Encoding.PEM)
    except ValueError:
        return None
    return Bundle(ca=KeyPair(signing, raw["ca.key"]), trusted=raw["ca.crt"],
                  serving=KeyPair(raw["tls.crt"], raw["tls.key"]))


# --------------------------------------------------------------------------- I/O
def _status(exc: Exception) -> int | None:
    return getattr(exc, "status", None)


def ensure_secret(api_client: Any, target: Target, *, now: dt.datetime) -> tuple[Bundle, bool, bool]:
    """The current bundle from the Secret, creating or renewing it first if needed.

    Returns ``(bundle, created, rotated)``: whether *this* call wrote the Secret.
    """
    from kubernetes.client import CoreV1Api
    from kubernetes.client.exceptions import ApiException

    core = CoreV1Api(api_client)
    lost_race = False
    for _ in range(5):
        try:
            current = api_client.sanitize_for_serialization(
                core.read_namespaced_secret(target.secret, target.namespace))
        except ApiException as exc:
            if _status(exc) != 404:
                raise
            bundle = issue(target, previous=None, now=now)
            try:
                core.create_namespaced_secret(target.namespace, to_secret(bundle, target))
            except ApiException as create_exc:
                if _status(create_exc) == 409:  # another replica created it first: use theirs
                    continue
                raise
            return bundle, True, False
        previous = from_secret(current)
        if previous is not None and (usable(previous, target, now=now) if lost_race
                                     else not needs_renewal(previous, target, now=now)):
            return previous, False, False
        bundle = issue(target, previous=previous, now=now)
        body = to_secret(bundle, target)
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        try:
            core.replace_namespaced_secret(target.secret, target.namespace, body)
        except ApiException as exc:
            if _status(exc) == 409:  # another replica renewed it first: read theirs, and use it
                lost_race = True
                continue
            raise
        return bundle, False, True
    raise RuntimeError(f"Secret {target.namespace}/{target.secret} kept changing under routewarden")


def patch_ca_bundle(api_client: Any, target: Target, trusted: bytes) -> tuple[list[str], list[str]]:
    """Set caBundle on every webhook of both configurations where it differs.

    A JSON patch with a ``test`` on each webhook's name, so a configuration reordered
    between read and patch is refused (422) and retried instead of patched wrongly.
    Returns ``(patched, missing)`` configuration kinds.
    """
    from kubernetes.client import AdmissionregistrationV1Api
    from kubernetes.client.exceptions import ApiException

    api = AdmissionregistrationV1Api(api_client)
    value = ca_bundle(trusted)
    patched, missing = [], []
    for kind, read, patch in (
        ("ValidatingWebhookConfiguration", api.read_validating_webhook_configuration,
         api.patch_validating_webhook_configuration),
        ("MutatingWebhookConfiguration", api.read_mutating_webhook_configuration,
         api.patch_mutating_webhook_configuration),
    ):
        try:
            config = api_client.sanitize_for_serialization(read(target.webhook_configuration))
        except ApiException as exc:
            if _status(exc) == 404:  # not applied yet (GitOps applies it after the Deployment)
                missing.append(kind)
                continue
            raise
        ops: list[dict[str, Any]] = []
        for i, hook in enumerate(config.get("webhooks") or []):
            if (hook.get("clientConfig") or {}).get("caBundle") != value:
                ops.append({"op": "test", "path": f"/webhooks/{i}/name", "value": hook["name"]})
                ops.append({"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": value})
        if ops:
            patch(target.webhook_configuration, ops)
            patched.append(kind)
    return patched, missing


def _write(path: Path, data: bytes, *, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(mode)
    os.replace(tmp, path)


def write_files(files: CertificateFiles, bundle: Bundle) -> bool:
    """Write the serving pair and the trusted CAs where they differ; key before certificate."""
    files.directory.mkdir(parents=True, exist_ok=True)
    changed = False
    for path, data, mode in ((files.key, bundle.serving.key_pem, 0o600), (files.cert, bundle.serving.cert_pem, 0o644),
                             (files.ca_cert, bundle.trusted, 0o644)):
        if not path.is_file() or path.read_bytes() != data:
            _write(path, data, mode=mode)
            changed = True
    return changed


def reconcile(api_client: Any, target: Target, files: CertificateFiles, *, clock: Clock = utcnow) -> Outcome:
    """One pass: Secret, then caBundle, then files (in that order; see the module docstring)."""
    bundle, created, rotated = ensure_secret(api_client, target, now=clock())
    patched, missing = patch_ca_bundle(api_client, target, bundle.trusted)
    changed = write_files(files, bundle)
    outcome = Outcome(bundle, created=created, rotated=rotated, patched=tuple(patched), missing=tuple(missing),
                      files_changed=changed)
    if created or rotated or patched or changed:
        log.info("self-managed certificates reconciled", extra=fields(
            secret=f"{target.namespace}/{target.secret}", created=created, rotated=rotated,
            patched=list(patched), missing=list(missing), files_changed=changed))
    return outcome


async def keep_reconciled(
    api_client: Any, target: Target, files: CertificateFiles, *,
    interval: float = 300.0, retry: float = 10.0, clock: Clock = utcnow,
) -> None:
    """Reconcile forever: every ``interval``, or every ``retry`` while something is missing or failing."""
    while True:
        wait = interval
        try:
            outcome = await asyncio.to_thread(reconcile, api_client, target, files, clock=clock)
            if outcome.missing:
                wait = retry
        except Exception as exc:  # noqa: BLE001 - any failure: keep serving, try again soon
            log.warning("self-managed certificates: reconcile failed", extra=fields(error=str(exc)))
            wait = retry
        await asyncio.sleep(wait)


# --------------------------------------------------------------------------- serve --self-managed-certs
def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("self-managed certificates (without cert-manager)")
    group.add_argument("--self-managed-certs", action="store_true",
                       help="issue, share (in a Secret) and rotate the serving certificate, and patch the "
                            "caBundle of the webhook configurations; needs --in-cluster or --kubeconfig")
    defaults = {f.name: f.default for f in dataclasses.fields(Target)}  # slots: class attributes are descriptors
    group.add_argument("--cert-secret", default=defaults["secret"], help="Secret holding the CA and serving pair "
                       "(default: %(default)s)")
    group.add_argument("--webhook-configuration", default=defaults["webhook_configuration"],
                       help="name of the Validating/MutatingWebhookConfiguration to patch (default: %(default)s)")
    group.add_argument("--service", default=defaults["service"],
                       help="Service kube-apiserver dials; names the certificate (default: %(default)s)")
    group.add_argument("--cert-check-interval", type=float, default=300.0,
                       help="seconds between certificate reconciles (default: %(default)s)")


def own_namespace() -> str:
    """POD_NAMESPACE (downward API), else the ServiceAccount's namespace file."""
    if namespace := os.environ.get("POD_NAMESPACE"):
        return namespace
    if SERVICE_ACCOUNT_NAMESPACE.is_file():
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
    raise SystemExit("routewarden serve --self-managed-certs: set POD_NAMESPACE (the namespace of the Secret)")


def alongside(first: Background | None, second: Background) -> Background:
    """One background task running ``second`` beside ``first`` (the informer, if any)."""

    async def both() -> None:
        await asyncio.gather(second(), *([first()] if first is not None else []))

    return both


def self_managed_certificates(
    args: argparse.Namespace, files: CertificateFiles, informer: Background | None, *, connect: Callable[[], Any]
) -> Background:
    """Reconcile once now (so the server starts with files), then keep reconciling beside the informer.

    ``connect`` makes the ``kubernetes`` ApiClient (in-cluster or from --kubeconfig).
    """
    if not (args.in_cluster or args.kubeconfig):
        raise SystemExit("routewarden serve: --self-managed-certs needs --in-cluster or --kubeconfig")
    api_client = connect()
    target = Target(namespace=own_namespace(), secret=args.cert_secret, service=args.service,
                    webhook_configuration=args.webhook_configuration)
    reconcile(api_client, target, files)

    async def certificates() -> None:
        await asyncio.sleep(args.cert_check_interval)
        await keep_reconciled(api_client, target, files, interval=args.cert_check_interval)

    return alongside(informer, certificates)
