"""The background reconciler against the fake kube-apiserver, through the real ``kubernetes`` client.

Each replica runs as ``serve`` runs it: its own informer (the watched kinds plus the
generated Services) feeding its own view and the reconciler's hook, its own leader
elector, its own client (told apart by their bearer tokens in the fake's request log).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator
from typing import Any

import kubernetes.client
import pytest
from conftest import eventually
from kubeapi import Call, FakeKubeAPI
from test_informer import FAST as INFORMER
from test_mutation_helpers import policies
from test_reconcile_lease import FAST as LEASE
from test_telemetry import value

from webhook.policy.loader import PolicyStore
from webhook.reconcile import Reconciler, ReconcilerConfig, service_kinds
from webhook.reconcile.lease import LeaderElector, LeaseConfig
from webhook.state.informer import run_informers
from webhook.state.kinds import WATCHED_KINDS
from webhook.state.store import ClusterState
from webhook.telemetry import Telemetry

GROUP = "gateway.networking.k8s.io"
HOSTNAME = "external-dns.alpha.kubernetes.io/hostname"
SERVICE = ("infra", "cilium-gateway-shared")
POLICY = """\
apiVersion: routewarden.dev/v1alpha1
kind: ServicePolicy
metadata: {{name: dns}}
spec:
  match: {{gatewayClassNames: [cilium]}}
  service:
    annotations: {{service.beta.kubernetes.io/aws-load-balancer-scheme: internal}}
    externalDNS: {{sources: [listeners, routes]}}{extra}
"""
FAST = ReconcilerConfig(mode="on", resync=60, quiet=0.05, max_delay=0.5, poll=0.05, backoff_initial=0.1)


def route(namespace: str, name: str, *hostnames: str) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/v1", "kind": "HTTPRoute", "metadata": {"namespace": namespace, "name": name},
            "spec": {"parentRefs": [{"name": "shared", "namespace": "infra"}], "hostnames": list(hostnames)}}


def generated_service(gateway: dict[str, Any]) -> dict[str, Any]:
    """The Service as Cilium creates it: owned by the Gateway (controller: true), marked with its labels."""
    meta = gateway["metadata"]
    return {"apiVersion": "v1", "kind": "Service", "metadata": {
        "namespace": "infra", "name": "cilium-gateway-shared",
        "labels": {"io.cilium.gateway/owning-gateway": "shared", "gateway.networking.k8s.io/gateway-name": "shared"},
        "ownerReferences": [{"apiVersion": f"{GROUP}/v1", "kind": "Gateway", "name": meta["name"], "uid": meta["uid"],
                             "controller": True}]},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}], "externalTrafficPolicy": "Cluster"}}


@pytest.fixture
async def api() -> AsyncIterator[FakeKubeAPI]:
    async with FakeKubeAPI(history=5000) as server:
        server.register_watched()
        server.register_defaults()
        for name in ("infra", "apples", "routewarden"):
            server.create("Namespace", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        gateway = server.create("Gateway", {
            "apiVersion": f"{GROUP}/v1", "kind": "Gateway", "metadata": {"namespace": "infra", "name": "shared"},
            "spec": {"gatewayClassName": "cilium", "listeners": [
                {"name": "http", "port": 80, "protocol": "HTTP", "hostname": "*.example.com",
                 "allowedRoutes": {"namespaces": {"from": "All"}}},
                {"name": "gw", "port": 8080, "protocol": "HTTP", "hostname": "gw.example.com"}]}})
        created = server.create("Service", generated_service(gateway), manager="cilium-operator")
        # The mutating webhook's annotation, added after the apiserver recorded field ownership: nobody owns it.
        created["metadata"]["annotations"] = {HOSTNAME: "gw.example.com"}
        server.update("Service", created)
        yield server


@dataclasses.dataclass
class Replica:
    name: str
    state: ClusterState
    store: PolicyStore
    telemetry: Telemetry
    reconciler: Reconciler


@contextlib.asynccontextmanager
async def replica(api: FakeKubeAPI, name: str, *, policy: str = POLICY.format(extra=""),
                  config: ReconcilerConfig = FAST, namespaces: tuple[str, ...] = ()) -> AsyncIterator[Replica]:
    """One routewarden replica's reconciler with its informer, until the block ends (then it stops)."""
    configuration = kubernetes.client.Configuration(host=api.url)
    configuration.api_key = {"authorization": name}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    client = kubernetes.client.ApiClient(configuration)
    state = ClusterState()
    store = PolicyStore(initial=policies(policy))
    telemetry = Telemetry()
    elector = LeaderElector(client, LeaseConfig(namespace="routewarden", identity=name, **LEASE))
    reconciler = Reconciler(state=state, policies=store, api_client=client, telemetry=telemetry, elector=elector,
                            config=config, service_watches=service_kinds(namespaces), informer=INFORMER)
    state.expect(k.kind for k in WATCHED_KINDS)  # as serve does: not synced until every kind is listed
    informer = asyncio.create_task(run_informers(state, api_client=client, kinds=WATCHED_KINDS, config=INFORMER,
                                                 on_event=reconciler.on_event))
    task = asyncio.create_task(reconciler.run())
    try:
        yield Replica(name, state, store, telemetry, reconciler)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        informer.cancel()
        await asyncio.gather(informer, return_exceptions=True)
        client.close()


def applies(api: FakeKubeAPI, who: str | None = None, *, dry_run: bool | None = None) -> list[Call]:
    """The server-side applies to the generated Service (by one replica)."""
    return [c for c in api.calls if c.method == "PATCH" and c.path.endswith("/services/cilium-gateway-shared")
            and c.content_type == "application/apply-patch+yaml" and (who is None or c.token == who)
            and (dry_run is None or (c.query.get("dryRun") == "All") == dry_run)]


def stored(api: FakeKubeAPI) -> dict[str, Any]:
    return api.get("Service", *SERVICE)


def annotation(api: FakeKubeAPI, key: str = HOSTNAME) -> str | None:
    return (stored(api)["metadata"].get("annotations") or {}).get(key)


def owners(api: FakeKubeAPI, key: str = HOSTNAME) -> set[str]:
    return {e["manager"] for e in stored(api)["metadata"].get("managedFields") or ()
            if f"f:{key}" in ((e["fieldsV1"].get("f:metadata") or {}).get("f:annotations") or {})}


async def settled(api: FakeKubeAPI, r: Replica) -> None:
    """The replica leads, has adopted the Service, and its queue is empty."""
    await eventually(r.reconciler.elector.is_leader, f"{r.name} leads")
    await eventually(lambda: owners(api) == {"routewarden"}, "routewarden owns the hostname annotation")
    await eventually(lambda: value(r.telemetry, "routewarden_reconcile_queue_depth") == 0, "an empty queue")


async def test_a_route_hostname_is_published_and_taken_back_by_server_side_apply(api: FakeKubeAPI) -> None:
    """A new route's hostname reaches the annotation within seconds, and leaves it when the route goes;
    an annotation another field manager set is left alone throughout."""
    api.update("Service", {**stored(api), "metadata": {**stored(api)["metadata"], "annotations": {
        **stored(api)["metadata"]["annotations"], "example.com/owner": "team-a"}}}, manager="kubectl-annotate")
    async with replica(api, "a") as a:
        await settled(api, a)
        assert annotation(api) == "*.example.com,gw.example.com"
        api.create("HTTPRoute", route("apples", "shop", "shop.example.com"))
        await eventually(lambda: annotation(api) == "*.example.com,gw.example.com,shop.example.com",
                         "the route's hostname published", timeout=5)
        api.delete("HTTPRoute", "apples", "shop")
        await eventually(lambda: annotation(api) == "*.example.com,gw.example.com", "the hostname taken back",
                         timeout=5)
        assert annotation(api, "example.com/owner") == "team-a"
        assert owners(api, "example.com/owner") == {"kubectl-annotate"}
        for call in applies(api):
            assert call.query["fieldManager"] == "routewarden" and "force" not in call.query
        await eventually(lambda: value(a.telemetry, "routewarden_reconcile_applies_total", mode="on") == 3,
                         "three applies counted: the adoption, the route added, the route deleted")
        assert len(applies(api)) == 3
        assert value(a.telemetry, "routewarden_reconcile_leader") == 1


async def test_a_value_another_manager_owns_is_reported_and_left_until_a_policy_forces_it(
    api: FakeKubeAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """A hostname typed with kubectl is a conflict: counted, logged, not taken; forceConflicts takes it."""
    caplog.set_level(logging.INFO, logger="routewarden.decision")
    meta = stored(api)["metadata"]
    api.update("Service", {**stored(api), "metadata": {**meta, "annotations": {**meta["annotations"],
                                                                               HOSTNAME: "typed.example.com"}}},
               manager="kubectl-annotate")
    async with replica(api, "a") as a:
        await eventually(lambda: value(a.telemetry, "routewarden_reconcile_conflicts_total", mode="on") >= 1,
                         "a conflict counted")
        assert annotation(api) == "typed.example.com" and owners(api) == {"kubectl-annotate"}
        line = next(r for r in caplog.records if r.getMessage() == "conflict applying Service infra/cilium-gateway-shared")
        assert line.levelno == logging.WARNING
        assert any("kubectl-annotate" in c and HOSTNAME in c for c in line.fields["conflicts"])
        assert "typed.example.com" not in str(line.fields)  # paths, never values
        a.reconciler.enqueue({("Service", *SERVICE)})
        await asyncio.sleep(0.3)
        assert annotation(api) == "typed.example.com"  # retried: still refused, still not taken
        a.store.current = policies(POLICY.format(extra="\n    forceConflicts: true"))
        await eventually(lambda: annotation(api) == "*.example.com,gw.example.com", "forced", timeout=5)
        assert owners(api) == {"routewarden"}
        assert applies(api)[-1].query.get("force") == "true"


async def test_dry_run_applies_with_dry_run_all_changes_nothing_and_counts_what_it_would(
    api: FakeKubeAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """In dry-run mode every apply carries dryRun=All: the Service keeps its resourceVersion, the metric and
    the decision log say what would change."""
    caplog.set_level(logging.INFO, logger="routewarden.decision")
    before = stored(api)["metadata"]["resourceVersion"]
    async with replica(api, "a", config=dataclasses.replace(FAST, mode="dry-run")) as a:
        await eventually(lambda: value(a.telemetry, "routewarden_reconcile_applies_total", mode="dry-run") >= 1,
                         "a dry-run apply counted")
        api.create("HTTPRoute", route("apples", "shop", "shop.example.com"))
        await eventually(lambda: value(a.telemetry, "routewarden_reconcile_applies_total", mode="dry-run") >= 2,
                         "the new route's change counted")
        assert applies(api) == applies(api, dry_run=True)
        assert stored(api)["metadata"]["resourceVersion"] == before
        assert annotation(api) == "gw.example.com" and value(a.telemetry, "routewarden_reconcile_applies_total",
                                                             mode="on") == 0
        lines = [r for r in caplog.records if r.getMessage() == "would apply Service infra/cilium-gateway-shared"]
        assert f"set metadata.annotations[{HOSTNAME}]" in lines[-1].fields["changes"]
        assert lines[-1].fields["reconcile"] == "dry-run"


async def test_a_burst_of_500_route_changes_is_one_apply_per_service(api: FakeKubeAPI) -> None:
    """500 routes created at once on the Gateway: one apply carries all their hostnames."""
    config = dataclasses.replace(FAST, quiet=1.0, max_delay=10.0)
    async with replica(api, "a", config=config) as a:
        await settled(api, a)
        before = len(applies(api))
        for i in range(500):
            api.create("HTTPRoute", route("apples", f"r{i}", f"r{i}.example.com"))
        await eventually(lambda: "r499.example.com" in (annotation(api) or ""), "all 500 names published", timeout=10)
        await asyncio.sleep(0.5)
        assert len(applies(api)) - before == 1
        assert len(annotation(api).split(",")) == 502


async def test_leader_handover_between_two_reconcilers_makes_no_double_writes(api: FakeKubeAPI) -> None:
    """Two replicas: only the Lease holder writes; when it stops the other takes over, finds the Service right
    (no write), and applies the next change alone. Every change is applied exactly once."""
    async with contextlib.AsyncExitStack() as second, contextlib.AsyncExitStack() as first:
        a = await first.enter_async_context(replica(api, "a"))
        await settled(api, a)
        b = await second.enter_async_context(replica(api, "b"))
        await eventually(lambda: b.state.synced, "b's view synced")
        api.create("HTTPRoute", route("apples", "one", "one.example.com"))
        await eventually(lambda: "one.example.com" in annotation(api), "a applies the first route")
        await asyncio.sleep(0.3)
        assert applies(api, "b") == [] and not b.reconciler.elector.is_leader()
        handover = len(applies(api))
        await first.aclose()  # a stops and releases the Lease
        await eventually(b.reconciler.elector.is_leader, "b leads")
        await eventually(lambda: b.reconciler._leading and value(b.telemetry, "routewarden_reconcile_queue_depth") == 0,
                         "b's first resync done")
        await asyncio.sleep(0.3)
        assert len(applies(api)) == handover  # nothing to correct: no write
        api.create("HTTPRoute", route("apples", "two", "two.example.com"))
        await eventually(lambda: "two.example.com" in annotation(api), "b applies the second route")
        await asyncio.sleep(0.3)
    by_a, by_b = applies(api, "a"), applies(api, "b")
    assert len(by_b) == 1 and max(c.at for c in by_a) < min(c.at for c in by_b)
    assert a.reconciler.writes == len(by_a) == 2  # the adoption, then route one


async def test_a_leader_cut_off_from_the_lease_stops_writing_before_the_other_starts(api: FakeKubeAPI) -> None:
    """a can still reach Services but no longer renew the Lease: it stops writing within its renew deadline;
    b leads only after the lease duration, so their writes never interleave."""
    async with replica(api, "a") as a:
        await settled(api, a)
        async with replica(api, "b") as b:
            api.fail_next(10_000, status=503, match=lambda r: r.headers.get("Authorization") == "Bearer a"
                          and "/leases" in r.path)
            for i in range(6):
                api.create("HTTPRoute", route("apples", f"churn-{i}", f"churn-{i}.example.com"))
                await asyncio.sleep(0.3)
            await eventually(b.reconciler.elector.is_leader, "b leads")
            await eventually(lambda: "churn-5.example.com" in annotation(api), "the last change applied", timeout=3)
            api.clear_faults()
    by_a, by_b = applies(api, "a"), applies(api, "b")
    assert by_b and max(c.at for c in by_a) < min(c.at for c in by_b)


async def test_the_view_holds_only_load_balancer_services_a_controller_may_have_generated(api: FakeKubeAPI) -> None:
    """Services are listed with a field selector, slimmed, and dropped when they stop qualifying; namespaced
    watches hold their namespaces only, and a relist of one keeps the others'."""
    api.create("Service", {"apiVersion": "v1", "kind": "Service", "metadata": {"namespace": "apples", "name": "plain"},
                           "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}})
    api.create("Service", {"apiVersion": "v1", "kind": "Service", "metadata": {"namespace": "apples", "name": "web"},
                           "spec": {"type": "ClusterIP", "ports": [{"port": 80}]}})
    for namespace, name in (("elsewhere", "cilium-gateway-shared"), ("apples", "generated")):
        other = generated_service(api.get("Gateway", "infra", "shared"))
        other["metadata"].update(namespace=namespace, name=name)
        api.create("Service", other)
    async with replica(api, "a", namespaces=("infra", "apples")) as a:
        services = a.reconciler.services  # a view of their own: the admission view holds no Service
        await eventually(lambda: a.state.synced and services.synced, "synced")
        held = services.get("Service", *SERVICE)
        assert a.state.count("Service") == 0 and "Service" not in a.state.expected_kinds

        def names() -> list[str]:
            return sorted(o["metadata"]["name"] for o in services.objects("Service"))

        assert held is not None and names() == ["cilium-gateway-shared", "generated"]
        assert "managedFields" not in held["metadata"] and set(held["spec"]) == {"type", "externalTrafficPolicy"}
        lists = [c for c in api.calls if c.path.endswith("/services") and c.method == "GET"]
        assert {c.path for c in lists} == {"/api/v1/namespaces/infra/services", "/api/v1/namespaces/apples/services"}
        assert all(c.query.get("fieldSelector") == "spec.type=LoadBalancer" for c in lists)
        def service_lists() -> int:
            return len([c for c in api.calls if c.path.endswith("/services") and "watch" not in c.query])

        before = service_lists()
        api.drop_watches()
        api.create("Namespace", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "later"}})
        api.compact()  # every Service watch resumes from a resourceVersion now too old: both relist
        await eventually(lambda: service_lists() >= before + 2, "both namespaces relisted")
        await asyncio.sleep(0.2)
        assert names() == ["cilium-gateway-shared", "generated"]
        service = stored(api)
        service["spec"]["type"] = "ClusterIP"
        api.update("Service", service)
        await eventually(lambda: names() == ["generated"], "no longer a LoadBalancer: dropped")


async def test_a_failed_apply_is_counted_logged_and_retried_with_backoff(
    api: FakeKubeAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """403 on the apply (RBAC missing): an error counted and logged with the status, retried until it works."""
    caplog.set_level(logging.INFO, logger="routewarden.decision")
    api.fail_next(3, status=403, match=lambda r: r.method == "PATCH" and "/services/" in r.path)
    async with replica(api, "a") as a:
        await eventually(lambda: value(a.telemetry, "routewarden_reconcile_errors_total", mode="on") >= 1,
                         "an error counted")
        await eventually(lambda: owners(api) == {"routewarden"}, "applied once the apiserver allows it")
        assert value(a.telemetry, "routewarden_reconcile_errors_total", mode="on") == 3
        failed = [r for r in caplog.records if r.getMessage().startswith("failed applying Service")]
        assert failed and "HTTP 403" in failed[0].fields["error"] and failed[0].fields["retry_in"] == 0.1


async def test_a_full_resync_reads_every_service_each_period_and_writes_only_what_differs(api: FakeKubeAPI) -> None:
    """With nothing changing, each resync reads the Service again and writes nothing."""
    async with replica(api, "a", config=dataclasses.replace(FAST, resync=0.3)) as a:
        await settled(api, a)
        writes = len(applies(api))
        reads = len([c for c in api.calls if c.method == "GET" and c.path.endswith("/services/cilium-gateway-shared")])
        await asyncio.sleep(1.0)
        later = len([c for c in api.calls if c.method == "GET" and c.path.endswith("/services/cilium-gateway-shared")])
        assert later - reads >= 2 and len(applies(api)) == writes
