"""The background reconciler against a real kube-apiserver, with the mutating webhook registered.

Two routewarden replicas run as ``serve`` runs them (HTTPS server, informer, reconciler,
Lease), one of them registered as the Service mutating and validating webhooks by URL +
caBundle, with the ``matchConditions`` of ``deploy/base`` and scoped to the namespaces
this run creates; the impersonation rule is in ``enforce`` mode, so a reconciler write
it refused would fail the test. The generated Service is created as Cilium creates it:
by its ServiceAccount (impersonation, which the harness admin may do), with Cilium's
labels and an ownerReference (``controller: true``) to the Gateway's real uid; the
webhook adds the external-dns hostname. Then:

* a route with a new hostname: the Service's annotation includes it within seconds,
  written by server-side apply under the field manager ``routewarden``, by nobody else;
* the route deleted: the name is removed;
* an annotation another field manager set is left alone, and a hostname another field
  manager writes is reported as a conflict and not taken;
* the second replica never writes, and does not hold the Lease.

Run with: ``KUBECONFIG=... pytest -m e2e tests/e2e``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import (
    CONFIG,
    KINDS,
    Cluster,
    api_client_fixture,  # noqa: F401 - provides the api_client fixture
    eventually,
    grant_services,
    impersonating,
    webhook_files,
)
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from test_service_trust_e2e import conditions, webhook
from test_telemetry import value

from webhook.certs import CertificateFiles
from webhook.policy.loader import PolicyStore
from webhook.reconcile import Reconciler, ReconcilerConfig, service_kinds
from webhook.reconcile.lease import LeaderElector, LeaseConfig
from webhook.runtime import Runtime
from webhook.server import create_app, start
from webhook.state.informer import run_informers
from webhook.state.store import ClusterState
from webhook.telemetry import Telemetry
from webhook.tls import CertificateReloader, server_context

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

HOST = os.environ.get("ROUTEWARDEN_E2E_WEBHOOK_HOST", "127.0.0.1")
HOSTNAME = "external-dns.alpha.kubernetes.io/hostname"
SCHEME = "service.beta.kubernetes.io/aws-load-balancer-scheme"
GROUP = "gateway.networking.k8s.io"
POLICY = """\
apiVersion: routewarden.dev/v1alpha1
kind: ServicePolicy
metadata: {{name: e2e-reconcile-{run}}}
spec:
  match: {{gatewayClassNames: [routewarden-e2e-{run}]}}
  service:
    annotations: {{{scheme}: internal}}
    externalDNS: {{sources: [listeners, routes]}}
---
apiVersion: routewarden.dev/v1alpha1
kind: TenancyPolicy
metadata: {{name: e2e-reconcile-{run}}}
spec:
  match: {{gateways: [{{namespace: {infra}, name: shared}}]}}
  rules: {{services/ImpersonatesGeneratedService: enforce}}
"""
CILIUM = "system:serviceaccount:kube-system:cilium-operator"  # Cilium's default identity


@dataclasses.dataclass
class Replica:
    port: int
    state: ClusterState
    telemetry: Telemetry
    reconciler: Reconciler


@contextlib.asynccontextmanager
async def replica(api_client: Any, policies: Path, certs: CertificateFiles, *, services_in: str,
                  lease_namespace: str, name: str) -> AsyncIterator[Replica]:
    """``serve --reconcile=on --reconcile-namespace=<services_in>``: the webhook, its informer and the reconciler."""
    state = ClusterState()
    store = PolicyStore(policies)
    assert store.reload(), store.errors
    telemetry = Telemetry()
    runtime = Runtime(policies=store, state=state, telemetry=telemetry, require_sync=True)
    elector = LeaderElector(api_client, LeaseConfig(namespace=lease_namespace, identity=f"{name}_{uuid.uuid4()}"))
    reconciler = Reconciler(state=state, policies=store, api_client=api_client, telemetry=telemetry, elector=elector,
                            config=ReconcilerConfig(mode="on", quiet=0.2), service_watches=service_kinds([services_in]),
                            informer=CONFIG)
    state.expect(k.kind for k in KINDS)

    async def informer() -> None:
        await run_informers(state, api_client=api_client, kinds=KINDS, config=CONFIG, on_event=reconciler.on_event)

    context = server_context(certs.cert, certs.key)
    app = create_app(runtime, certificates=CertificateReloader(context, certs.cert, certs.key), policy_interval=None,
                     informer=informer, reconciler=reconciler.run)
    runner, port = await start(app, host=HOST, port=0, ssl_context=context, access_log=False)
    try:
        await eventually(lambda: runtime.readiness()[0], f"{name} ready")
        yield Replica(port, state, telemetry, reconciler)
    finally:
        await runner.cleanup()


def annotations(service: Any) -> dict[str, str]:
    return dict(service.metadata.annotations or {})


def owners_of(service: Any, key: str) -> set[str]:
    """The field managers owning annotation ``key``."""
    return {m.manager for m in service.metadata.managed_fields or ()
            if f"f:{key}" in (((m.fields_v1 or {}).get("f:metadata") or {}).get("f:annotations") or {})}


async def test_the_reconciler_keeps_the_generated_service_in_step_with_routes(api_client: Any, tmp_path: Path) -> None:
    """Route added: its hostname published within seconds by routewarden's apply; route deleted: removed;
    other managers' values untouched (conflict reported, not taken); the second replica never writes."""
    cluster = Cluster(api_client)
    core = k8s.CoreV1Api(api_client)
    admission = k8s.AdmissionregistrationV1Api(api_client)
    run = uuid.uuid4().hex[:8]
    infra, apples, system = (f"rw-e2e-{run}-{n}" for n in ("infra", "apples", "system"))
    webhook_name = f"routewarden-e2e-reconcile-{run}"
    certs = webhook_files(tmp_path, POLICY.format(run=run, scheme=SCHEME, infra=infra), name="services.yaml")
    created: list[str] = []
    try:
        for ns in (infra, apples, system):
            await cluster.namespace(ns, run)
            created.append(ns)
        await grant_services(api_client, infra, {"kind": "ServiceAccount", "name": "cilium-operator",
                                                 "namespace": "kube-system"})
        gateway = await cluster.create("Gateway", infra, {
            "metadata": {"name": "shared"},
            "spec": {"gatewayClassName": f"routewarden-e2e-{run}", "listeners": [
                {"name": "http", "port": 80, "protocol": "HTTP", "hostname": f"*.{run}.example.com",
                 "allowedRoutes": {"namespaces": {"from": "All"}}}]},
        })
        options = {"policies": tmp_path / "policies", "certs": certs, "services_in": infra, "lease_namespace": system}
        async with replica(api_client, name="a", **options) as a:
            await eventually(a.reconciler.elector.is_leader, "replica a holds the Lease")
            async with replica(api_client, name="b", **options) as b:
                for create, config in ((admission.create_mutating_webhook_configuration,
                                        "mutatingwebhookconfiguration.yaml"),
                                       (admission.create_validating_webhook_configuration,
                                        "validatingwebhookconfiguration.yaml")):
                    kind = "mutate" if "mutating" in config else "validate"
                    hook = webhook(f"services.{kind}.{run}.e2e.routewarden.dev", port=a.port, path=f"/{kind}",
                                   certs=certs, run=run, match=conditions(config, f"services.{kind}.routewarden.dev"))
                    await asyncio.to_thread(create, {"metadata": {"name": webhook_name}, "webhooks": [hook]})
                # The Service as Cilium creates it: by its ServiceAccount, owned by the Gateway (controller: true).
                controller = impersonating(api_client, CILIUM)
                body = {
                    "metadata": {"name": "cilium-gateway-shared", "labels": {
                        "io.cilium.gateway/owning-gateway": "shared", "gateway.networking.k8s.io/gateway-name": "shared"},
                        "ownerReferences": [{"apiVersion": f"{GROUP}/{cluster.versions['Gateway']}", "kind": "Gateway",
                                             "name": "shared", "uid": gateway["metadata"]["uid"], "controller": True}]},
                    "spec": {"type": "LoadBalancer", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
                }
                for _ in range(30):  # until the API server calls the new webhook configuration
                    probe = await asyncio.to_thread(controller.create_namespaced_service, infra, body, dry_run="All")
                    if HOSTNAME in annotations(probe):
                        break
                    await asyncio.sleep(1)
                else:
                    pytest.skip(f"the API server never called the webhook at {HOST}:{a.port}")
                service = await asyncio.to_thread(controller.create_namespaced_service, infra, body)
                assert annotations(service)[HOSTNAME] == f"*.{run}.example.com"
                # What the webhook adds after the apiserver recorded field ownership belongs to nobody...
                assert owners_of(service, HOSTNAME) == set()

                def read() -> Any:
                    return core.read_namespaced_service("cilium-gateway-shared", infra)

                async def current() -> Any:
                    return await asyncio.to_thread(read)

                # ...until the reconciler's first apply takes it (and the policy's other values) over.
                latest: dict[str, Any] = {}

                async def poll(check: Any, what: str, timeout: float = 30) -> None:
                    async def refresh() -> None:
                        while True:
                            latest["service"] = await current()
                            await asyncio.sleep(0.1)

                    task = asyncio.create_task(refresh())
                    try:
                        await eventually(lambda: "service" in latest and check(latest["service"]), what, timeout=timeout)
                    finally:
                        task.cancel()
                        await asyncio.gather(task, return_exceptions=True)

                await poll(lambda s: owners_of(s, HOSTNAME) == {"routewarden"}, "routewarden owns the hostname")
                # Another field manager's annotation.
                await asyncio.to_thread(core.patch_namespaced_service, "cilium-gateway-shared", infra,
                                        {"metadata": {"annotations": {"example.com/owner": "team-a"}}},
                                        field_manager="e2e-team")

                # A route with a new hostname: published within seconds by routewarden's apply.
                hostname = f"shop.{run}.example.com"
                started = time.monotonic()
                await cluster.create("HTTPRoute", apples, {
                    "metadata": {"name": "shop"},
                    "spec": {"parentRefs": [{"name": "shared", "namespace": infra}], "hostnames": [hostname]},
                })
                await poll(lambda s: hostname in annotations(s).get(HOSTNAME, ""), "the route's hostname published",
                           timeout=10)
                published = time.monotonic() - started
                service = latest["service"]
                assert annotations(service)[HOSTNAME] == f"*.{run}.example.com,{hostname}"
                assert owners_of(service, HOSTNAME) == {"routewarden"}
                assert {m.manager for m in service.metadata.managed_fields} <= {
                    "routewarden", "OpenAPI-Generator", "e2e-team"}
                assert annotations(service)["example.com/owner"] == "team-a"

                # The route deleted: the name is removed.
                started = time.monotonic()
                await cluster.delete("HTTPRoute", apples, "shop")
                await poll(lambda s: hostname not in annotations(s).get(HOSTNAME, ""), "the hostname removed",
                           timeout=10)
                removed = time.monotonic() - started
                service = latest["service"]
                assert annotations(service)[HOSTNAME] == f"*.{run}.example.com"
                assert annotations(service)["example.com/owner"] == "team-a"
                assert owners_of(service, "example.com/owner") == {"e2e-team"}

                # Another field manager writes the hostname (not the controller: the webhook leaves the write
                # as it is). That manager owns the value now: a conflict, reported and not taken.
                await asyncio.to_thread(core.patch_namespaced_service, "cilium-gateway-shared", infra,
                                        {"metadata": {"annotations": {HOSTNAME: f"typed.{run}.example.com"}}},
                                        field_manager="e2e-team")
                await eventually(lambda: value(a.telemetry, "routewarden_reconcile_conflicts_total", mode="on") >= 1,
                                 "the conflict reported", timeout=15)
                service = await current()
                assert annotations(service)[HOSTNAME] == f"typed.{run}.example.com"
                assert owners_of(service, HOSTNAME) == {"e2e-team"}

                # Only the Lease holder wrote.
                assert a.reconciler.writes >= 3 and b.reconciler.writes == 0
                assert not b.reconciler.elector.is_leader()
                lease = await asyncio.to_thread(k8s.CoordinationV1Api(api_client).read_namespaced_lease,
                                                "routewarden-reconciler", system)
                assert lease.spec.holder_identity == a.reconciler.elector.config.identity
                assert value(b.telemetry, "routewarden_reconcile_applies_total", mode="on") == 0
                print(f"\nreconciler e2e: hostname published {published:.2f}s after the route was created, "
                      f"removed {removed:.2f}s after it was deleted")
    finally:
        for delete in (admission.delete_mutating_webhook_configuration,
                       admission.delete_validating_webhook_configuration):
            with contextlib.suppress(ApiException):
                await asyncio.to_thread(delete, webhook_name)
        for ns in created:
            await cluster.delete_namespace(ns)
