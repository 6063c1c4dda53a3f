"""Self-managed certificates against a fake kube-apiserver, through the real ``kubernetes`` client.

Concurrency is real: replicas are threads issuing HTTP requests that the fake server
serialises as etcd would, so "exactly one create wins" is decided by the server's 409s.
Rotation uses a clock moved forward instead of certificates that expire in seconds: the
certificates are real (one day), and the decision is taken at a later instant.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import verification
from kubeapi import FakeKubeAPI

from webhook import bootstrap
from webhook.bootstrap import Target, due, from_secret, issue, reconcile
from webhook.certs import CertificateFiles, build_ca, build_serving_certificate

TARGET = Target(namespace="routewarden", ca_days=30, serving_days=1)
HOOKS = {
    "ValidatingWebhookConfiguration": ["validate.routewarden.dev"],
    "MutatingWebhookConfiguration": ["services.mutate.routewarden.dev", "gateways.mutate.routewarden.dev"],
}


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def webhook_configuration(kind: str) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": "routewarden"},
        "webhooks": [{"name": name, "clientConfig": {"service": {"name": "routewarden", "namespace": "routewarden"}},
                      "sideEffects": "None", "admissionReviewVersions": ["v1"]} for name in HOOKS[kind]],
    }


@pytest.fixture
def api() -> Iterator[FakeKubeAPI]:
    fake = FakeKubeAPI()
    fake.register_defaults()
    with fake.in_thread():
        for kind in HOOKS:
            fake.create(kind, webhook_configuration(kind))
        yield fake


@pytest.fixture
def client(api: FakeKubeAPI) -> Iterator[Any]:
    with kubernetes.client.ApiClient(kubernetes.client.Configuration(host=api.url)) as api_client:
        yield api_client


def secret_creates(api: FakeKubeAPI) -> int:
    return sum(1 for method, path, _ in api.requests if method == "POST" and path.endswith("/secrets"))


def ca_bundles(api: FakeKubeAPI) -> set[str]:
    return {hook["clientConfig"].get("caBundle", "")
            for kind in HOOKS for hook in api.get(kind, "", "routewarden")["webhooks"]}


def verify(cert_pem: bytes, trusted_pem: bytes, hostname: str, *, at: dt.datetime) -> None:
    """Verify as kube-apiserver does: chain to a CA in caBundle, hostname in the SAN, within validity."""
    store = verification.Store(x509.load_pem_x509_certificates(trusted_pem))
    verifier = verification.PolicyBuilder().store(store).time(at).build_server_verifier(
        verification.DNSName(hostname))
    verifier.verify(x509.load_pem_x509_certificate(cert_pem), [])


# --------------------------------------------------------------------------- decisions
@pytest.mark.parametrize(
    ("elapsed", "expected"),
    [(dt.timedelta(0), False), (dt.timedelta(hours=15), False), (dt.timedelta(hours=17), True),
     (dt.timedelta(days=2), True)],
)
def test_a_certificate_is_due_when_less_than_a_third_of_its_lifetime_remains(
    elapsed: dt.timedelta, expected: bool
) -> None:
    """A one-day certificate is renewed after about 16 hours, never only once expired."""
    ca = build_ca(days=30)
    serving = build_serving_certificate(["routewarden.routewarden.svc"], [], ca, days=1)
    assert due(serving.cert_pem, now=now() + elapsed) is expected


def test_an_unreadable_certificate_is_due() -> None:
    """Garbage in the Secret is replaced, not served."""
    assert due(b"not a certificate", now=now())


def test_renewing_the_serving_certificate_keeps_the_ca_and_the_bundle() -> None:
    """A serving renewal needs no caBundle change: same CA, same trusted bundle."""
    first = issue(TARGET, previous=None, now=now())
    second = issue(TARGET, previous=first, now=now())
    assert second.ca == first.ca and second.trusted == first.trusted
    assert second.serving.cert_pem != first.serving.cert_pem
    verify(second.serving.cert_pem, second.trusted, "routewarden.routewarden.svc", at=now())


def test_renewing_the_ca_keeps_trusting_the_old_one_until_it_expires() -> None:
    """A new CA signs the new certificate; the old CA stays in the bundle for replicas not yet renewed."""
    first = issue(TARGET, previous=None, now=now())
    later = now() + dt.timedelta(days=25)  # past two thirds of a 30-day CA
    second = issue(TARGET, previous=first, now=later)
    assert second.ca != first.ca
    cas = x509.load_pem_x509_certificates(second.trusted)
    assert [c.public_bytes(serialization.Encoding.PEM) for c in cas] == [second.ca.cert_pem,
                                                                                   first.ca.cert_pem]
    verify(second.serving.cert_pem, second.trusted, "routewarden.routewarden.svc", at=later)  # issued then
    verify(first.serving.cert_pem, second.trusted, "routewarden.routewarden.svc", at=now())


def test_a_secret_without_every_key_is_reissued() -> None:
    """An incomplete Secret (say, created by hand with only tls.crt) reads as no bundle at all."""
    assert from_secret({"data": {"tls.crt": base64.b64encode(b"x").decode()}}) is None


# --------------------------------------------------------------------------- against the API
def test_the_first_start_creates_the_secret_patches_every_webhook_and_writes_the_files(
    api: FakeKubeAPI, client: Any, tmp_path: Path
) -> None:
    """One reconcile: Secret created, caBundle set on all three webhooks, a verifiable pair on disk."""
    files = CertificateFiles(tmp_path / "tls")
    outcome = reconcile(client, TARGET, files)
    assert outcome.created and not outcome.rotated and not outcome.missing
    assert set(outcome.patched) == set(HOOKS)
    secret = api.get("Secret", "routewarden", "routewarden-tls")
    assert secret["type"] == "kubernetes.io/tls"
    (bundle_value,) = ca_bundles(api)
    trusted = base64.b64decode(bundle_value)
    assert trusted == base64.b64decode(secret["data"]["ca.crt"]) == files.ca_cert.read_bytes()
    for name in TARGET.hostnames:
        verify(files.cert.read_bytes(), trusted, name, at=now())
    assert files.key.stat().st_mode & 0o077 == 0
    assert not files.ca_key.exists(), "the CA key stays in the Secret"


def test_a_second_reconcile_changes_nothing(api: FakeKubeAPI, client: Any, tmp_path: Path) -> None:
    """Idempotent: no write to the Secret, no patch, no file rewrite when all is current."""
    files = CertificateFiles(tmp_path)
    reconcile(client, TARGET, files)
    version = api.get("Secret", "routewarden", "routewarden-tls")["metadata"]["resourceVersion"]
    outcome = reconcile(client, TARGET, files)
    assert (outcome.created, outcome.rotated, outcome.patched, outcome.files_changed) == (False, False, (), False)
    assert api.get("Secret", "routewarden", "routewarden-tls")["metadata"]["resourceVersion"] == version


def run_together(count: int, fn: Any) -> list[Any]:
    """Run ``fn(i)`` in ``count`` threads released at the same instant."""
    barrier = threading.Barrier(count)

    def go(i: int) -> Any:
        barrier.wait()
        return fn(i)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(go, range(count)))


def test_replicas_starting_together_create_the_secret_once_and_share_it(
    api: FakeKubeAPI, tmp_path: Path
) -> None:
    """Two replicas, one Secret: both POST, one gets 409 and adopts the winner's certificate."""
    url = api.url

    def replica(i: int) -> bootstrap.Outcome:
        with kubernetes.client.ApiClient(kubernetes.client.Configuration(host=url)) as api_client:
            return reconcile(api_client, TARGET, CertificateFiles(tmp_path / f"replica-{i}"))

    api.delay = 0.3  # both reads are answered before either create lands: a real race, every run
    outcomes = run_together(2, replica)
    api.delay = 0.0
    assert sorted(o.created for o in outcomes) == [False, True]
    assert secret_creates(api) == 2, "both tried; the server let one through"
    assert len(api.objects("Secret")) == 1
    stored = base64.b64decode(api.get("Secret", "routewarden", "routewarden-tls")["data"]["tls.crt"])
    for i in range(2):
        assert (tmp_path / f"replica-{i}" / "tls.crt").read_bytes() == stored
    assert len(ca_bundles(api)) == 1


def test_the_serving_certificate_rotates_before_it_expires_once_for_all_replicas(
    api: FakeKubeAPI, tmp_path: Path
) -> None:
    """17 hours into a 1-day certificate, two replicas renew it once (409 for the loser), CA unchanged."""
    url = api.url
    with kubernetes.client.ApiClient(kubernetes.client.Configuration(host=url)) as first_client:
        first = reconcile(first_client, TARGET, CertificateFiles(tmp_path / "replica-0"))
    bundle_before = ca_bundles(api)
    later = now() + dt.timedelta(hours=17)

    def replica(i: int) -> bootstrap.Outcome:
        with kubernetes.client.ApiClient(kubernetes.client.Configuration(host=url)) as api_client:
            return reconcile(api_client, TARGET, CertificateFiles(tmp_path / f"replica-{i}"), clock=lambda: later)

    api.delay = 0.3  # both reads are answered before either write lands: a real race, every run
    outcomes = run_together(2, replica)
    api.delay = 0.0
    assert sorted(o.rotated for o in outcomes) == [False, True]
    renewed = outcomes[0].bundle.serving.cert_pem
    assert outcomes[1].bundle.serving.cert_pem == renewed != first.bundle.serving.cert_pem
    old = x509.load_pem_x509_certificate(first.bundle.serving.cert_pem)
    assert old.not_valid_after_utc > later, "renewed while the old certificate was still valid"
    assert ca_bundles(api) == bundle_before
    assert sum(1 for m, p, _ in api.requests if m == "PUT" and p.endswith("/routewarden-tls")) == 2
    for i in range(2):
        assert (tmp_path / f"replica-{i}" / "tls.crt").read_bytes() == renewed
        verify(renewed, (tmp_path / f"replica-{i}" / "ca.crt").read_bytes(), "routewarden.routewarden.svc",
               at=later)


def test_a_certificate_for_another_service_name_is_reissued(api: FakeKubeAPI, client: Any, tmp_path: Path) -> None:
    """Renaming the Service renews the certificate at once: kube-apiserver checks the name."""
    reconcile(client, TARGET, CertificateFiles(tmp_path))
    renamed = Target(namespace="routewarden", service="routewarden-webhook", ca_days=30, serving_days=1)
    outcome = reconcile(client, renamed, CertificateFiles(tmp_path))
    assert outcome.rotated
    verify((tmp_path / "tls.crt").read_bytes(), (tmp_path / "ca.crt").read_bytes(),
           "routewarden-webhook.routewarden.svc", at=now())


def test_webhook_configurations_applied_later_are_patched_by_the_loop(api: FakeKubeAPI, tmp_path: Path) -> None:
    """GitOps applies the configurations after the Deployment: the loop patches them when they appear."""
    for kind in HOOKS:
        api.delete(kind, "", "routewarden")
    files = CertificateFiles(tmp_path)
    with kubernetes.client.ApiClient(kubernetes.client.Configuration(host=api.url)) as api_client:
        assert set(reconcile(api_client, TARGET, files).missing) == set(HOOKS)

        async def scenario() -> None:
            loop_task = asyncio.create_task(
                bootstrap.keep_reconciled(api_client, TARGET, files, interval=60.0, retry=0.05))
            try:
                await asyncio.sleep(0.2)
                for kind in HOOKS:
                    api.create(kind, webhook_configuration(kind))
                for _ in range(100):
                    if "" not in ca_bundles(api):
                        break
                    await asyncio.sleep(0.05)
            finally:
                loop_task.cancel()

        asyncio.run(scenario())
    assert ca_bundles(api) == {base64.b64encode(files.ca_cert.read_bytes()).decode()}


def test_the_loop_survives_an_unreachable_api_server(api: FakeKubeAPI, client: Any, tmp_path: Path) -> None:
    """Errors from the API are logged and retried; the loop keeps going and recovers."""
    api.fail_next(3, status=503, match="/secrets")

    async def scenario() -> None:
        task = asyncio.create_task(bootstrap.keep_reconciled(client, TARGET, CertificateFiles(tmp_path),
                                                             interval=60.0, retry=0.05))
        try:
            for _ in range(100):
                if (tmp_path / "tls.crt").exists():
                    break
                await asyncio.sleep(0.05)
        finally:
            task.cancel()

    asyncio.run(scenario())
    assert (tmp_path / "tls.crt").exists()
    assert len(api.objects("Secret")) == 1


# --------------------------------------------------------------------------- serve --self-managed-certs
def test_serve_flags_reconcile_before_the_server_loads_its_certificate(
    api: FakeKubeAPI, client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flags the self-managed overlay passes, parsed by the real CLI, leave a pair in --cert-dir."""
    from webhook.cli import build_parser

    monkeypatch.setenv("POD_NAMESPACE", "routewarden")
    args = build_parser().parse_args(["serve", "--kubeconfig", "unused", f"--cert-dir={tmp_path}",
                                      "--self-managed-certs", "--cert-secret=routewarden-tls",
                                      "--webhook-configuration=routewarden", "--service=routewarden"])
    background = bootstrap.self_managed_certificates(args, CertificateFiles(tmp_path), None, connect=lambda: client)
    assert callable(background)
    verify((tmp_path / "tls.crt").read_bytes(), (tmp_path / "ca.crt").read_bytes(), "routewarden.routewarden.svc",
           at=now())
    assert len(ca_bundles(api)) == 1 and "" not in ca_bundles(api)


def test_self_managed_certificates_need_a_cluster(tmp_path: Path) -> None:
    """Without --in-cluster or --kubeconfig there is nowhere to keep the Secret: a clear error."""
    from webhook.cli import build_parser

    args = build_parser().parse_args(["serve", "--self-managed-certs", f"--cert-dir={tmp_path}"])
    with pytest.raises(SystemExit, match="needs --in-cluster or --kubeconfig"):
        bootstrap.self_managed_certificates(args, CertificateFiles(tmp_path), None, connect=lambda: None)
