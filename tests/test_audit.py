"""The audit: pure findings over a cluster view, PolicyReports in the (fake) apiserver, the server task."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
from kubeapi import FakeKubeAPI

from webhook.audit import (
    REPORT_GROUP,
    REPORT_PLURAL,
    REPORT_VERSION,
    audit,
    audit_hook,
    earlier_claimant,
    policy_report,
    write_policy_reports,
)
from webhook.policy.loader import PolicyStore, load_paths
from webhook.runtime import Runtime
from webhook.server import create_app
from webhook.state.manifests import load_manifests, state_from_manifests
from webhook.state.store import ClusterState
from webhook.telemetry import Telemetry

HERE = Path(__file__).parent / "cli" / "audit"
POLICIES = load_paths([HERE / "policy.yaml"])


def cluster() -> ClusterState:
    return state_from_manifests(load_manifests([HERE / "cluster.yaml"]))


def findings(state: ClusterState, policies=POLICIES) -> dict[tuple[str, str, str], Any]:
    return {(f.namespace, f.name, f.rule): f for f in audit(state, policies).findings}


# ----------------------------------------------------------------------------- pure audit
def test_pre_existing_violations_are_found_with_their_mode() -> None:
    """A route admitted before grants were required fails; a catch-all route (warn rule) warns."""
    found = findings(cluster())
    assert found[("apples", "cross", "references/RefNotPermitted")].result == "fail"
    catch_all = found[("bananas", "catch-all", "hostnames/HostnameRequired")]
    assert (catch_all.result, catch_all.mode) == ("warn", "warn")
    assert found[("infra", "shared", "admission")].result == "pass"


def test_a_hostname_conflict_names_only_the_later_claimant() -> None:
    """Both routes see each other as CREATEs; only the later one (by creationTimestamp) is reported."""
    found = findings(cluster())
    conflict = found[("apples", "late", "hostnames/HostnameConflict")]
    assert conflict.result == "fail" and conflict.field == "spec.hostnames[0]"
    assert "bananas" in conflict.message and "HTTPRoute bananas/early" in conflict.message
    assert ("bananas", "early", "hostnames/HostnameConflict") not in found
    assert found[("bananas", "early", "admission")].result == "pass"


def test_the_later_claimant_is_decided_by_time_not_by_name() -> None:
    """Swap the creation times and the other route becomes the one reported."""
    state = cluster()
    early, late = state.get("HTTPRoute", "bananas", "early"), state.get("HTTPRoute", "apples", "late")
    swapped = [copy.deepcopy(early), copy.deepcopy(late)]
    swapped[0]["metadata"]["creationTimestamp"], swapped[1]["metadata"]["creationTimestamp"] = (
        late["metadata"]["creationTimestamp"], early["metadata"]["creationTimestamp"])
    for obj in swapped:
        state.apply("HTTPRoute", obj)
    found = findings(state)
    assert ("bananas", "early", "hostnames/HostnameConflict") in found
    assert ("apples", "late", "hostnames/HostnameConflict") not in found
    assert earlier_claimant(state, state.route("HTTPRoute", "bananas", "early"), "shop.example.com").name == "late"


def test_routes_created_in_the_same_second_still_have_exactly_one_owner() -> None:
    """Equal timestamps (two replicas, one second): the tie is broken, one route is reported."""
    state = cluster()
    late = copy.deepcopy(state.get("HTTPRoute", "apples", "late"))
    late["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    state.apply("HTTPRoute", late)
    found = findings(state)
    reported = [key for key in found if key[2] == "hostnames/HostnameConflict"]
    assert len(reported) == 1


def test_objects_created_before_a_policy_changed_are_judged_by_the_new_policy() -> None:
    """Without the policy nothing fails; with it the same objects do."""
    assert audit(cluster(), load_paths([])).violations == ()
    assert {f.rule for f in audit(cluster(), POLICIES).violations} == {
        "references/RefNotPermitted", "hostnames/HostnameConflict", "hostnames/HostnameRequired"}


def test_counts_feed_the_audit_gauge_by_rule_mode_and_namespace() -> None:
    """``counts()`` has the keys Telemetry.audit_results takes, and the gauge exports them."""
    report = audit(cluster(), POLICIES)
    assert report.counts() == {
        ("references/RefNotPermitted", "enforce", "apples"): 1,
        ("hostnames/HostnameConflict", "enforce", "apples"): 1,
        ("hostnames/HostnameRequired", "warn", "bananas"): 1,
    }
    telemetry = Telemetry()
    telemetry.audit_results(report.counts())
    text = telemetry.metrics()[0].decode()
    assert 'routewarden_audit_violations{mode="enforce",namespace="apples",rule="hostnames/HostnameConflict"} 1.0' in text


def test_a_policy_report_summarises_its_results() -> None:
    """One PolicyReport per namespace: results per object and rule, summary counts, source routewarden."""
    report = audit(cluster(), POLICIES)
    body = policy_report("apples", report.by_namespace()["apples"])
    assert body["apiVersion"] == "wgpolicyk8s.io/v1alpha2" and body["kind"] == "PolicyReport"
    assert body["summary"] == {"pass": 0, "fail": 2, "warn": 0, "error": 0, "skip": 0}
    assert {r["source"] for r in body["results"]} == {"routewarden"}
    assert {(r["resources"][0]["name"], r["rule"]) for r in body["results"]} == {
        ("cross", "references/RefNotPermitted"), ("late", "hostnames/HostnameConflict")}


# ----------------------------------------------------------------------------- the apiserver
@pytest.fixture
def apiserver() -> Iterator[tuple[FakeKubeAPI, kubernetes.client.ApiClient]]:
    api = FakeKubeAPI()
    api.register_defaults()
    api.register("PolicyReport", group=REPORT_GROUP, versions=REPORT_VERSION, plural=REPORT_PLURAL)
    with api.in_thread(), kubernetes.client.ApiClient(kubernetes.client.Configuration(host=api.url)) as client:
        yield api, client


def stored(api: FakeKubeAPI) -> dict[str, dict]:
    return {o["metadata"]["namespace"]: o for o in api.objects("PolicyReport")}


def test_policy_reports_are_created_per_namespace_in_the_apiserver(apiserver) -> None:
    """The first write creates one report per namespace with audited objects."""
    api, client = apiserver
    result = write_policy_reports(client, audit(cluster(), POLICIES))
    assert result is not None and result.created == 3
    reports = stored(api)
    assert set(reports) == {"apples", "bananas", "infra"}
    assert reports["bananas"]["summary"] == {"pass": 1, "fail": 0, "warn": 1, "error": 0, "skip": 0}
    assert reports["apples"]["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "routewarden"}


def test_writing_the_same_report_again_changes_nothing(apiserver) -> None:
    """Replicas writing the same content are idempotent: no update, same resourceVersion."""
    api, client = apiserver
    report = audit(cluster(), POLICIES)
    write_policy_reports(client, report)
    before = api.truth("PolicyReport")
    result = write_policy_reports(client, audit(cluster(), POLICIES))
    assert result is not None and (result.unchanged, result.created, result.replaced) == (3, 0, 0)
    assert api.truth("PolicyReport") == before


def test_reports_follow_the_cluster_replaced_when_changed_and_deleted_when_empty(apiserver) -> None:
    """A fixed route replaces its namespace's report; a namespace with nothing audited loses its report."""
    api, client = apiserver
    state = cluster()
    write_policy_reports(client, audit(state, POLICIES))
    state.remove("HTTPRoute", "apples", "cross")
    state.remove("HTTPRoute", "apples", "late")
    state.apply("HTTPRoute", {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                              "metadata": {"name": "fine", "namespace": "bananas"},
                              "spec": {"parentRefs": [{"name": "shared", "namespace": "infra"}],
                                       "hostnames": ["fine.example.com"]}})
    result = write_policy_reports(client, audit(state, POLICIES))
    assert result is not None and (result.replaced, result.deleted, result.unchanged) == (1, 1, 1)
    reports = stored(api)
    assert set(reports) == {"bananas", "infra"}
    assert reports["bananas"]["summary"]["pass"] == 2


def test_without_the_policy_report_crd_nothing_is_written(apiserver) -> None:
    """Discovery says the CRD is missing: None, and no request to create anything."""
    api, client = apiserver
    api.resources["PolicyReport"].installed = False
    assert write_policy_reports(client, audit(cluster(), POLICIES)) is None
    assert not [r for r in api.requests if r[0] != "GET"]


# ----------------------------------------------------------------------------- the server task
async def test_the_server_runs_the_audit_and_exports_it_as_metrics_and_reports(aiohttp_client: Any) -> None:
    """create_app(audit=...) runs rounds: the gauge appears on /metrics and reports in the apiserver."""
    api = FakeKubeAPI()
    api.register("PolicyReport", group=REPORT_GROUP, versions=REPORT_VERSION, plural=REPORT_PLURAL)
    with api.in_thread(), kubernetes.client.ApiClient(kubernetes.client.Configuration(host=api.url)) as client:
        telemetry = Telemetry()
        runtime = Runtime(policies=PolicyStore(initial=POLICIES), state=cluster(), telemetry=telemetry,
                          require_sync=False)
        hook = audit_hook(runtime.state, runtime.policies, telemetry, interval=0.2, api_client=client)
        http = await aiohttp_client(create_app(runtime, policy_interval=None, audit=hook))
        for _ in range(100):
            text = await (await http.get("/metrics")).text()
            if "routewarden_audit_violations{" in text and len(api.objects("PolicyReport")) == 3:
                break
            await asyncio.sleep(0.05)
        assert 'rule="references/RefNotPermitted"' in text
        assert len(api.objects("PolicyReport")) == 3


async def test_the_audit_waits_for_the_cluster_view_to_sync() -> None:
    """Before the informer has listed everything, no round runs (it would report a partial view)."""
    state = ClusterState(expected_kinds=["HTTPRoute"])
    telemetry = Telemetry()
    hook = audit_hook(state, PolicyStore(initial=POLICIES), telemetry, interval=0.05)
    task = asyncio.create_task(hook())
    await asyncio.sleep(0.2)
    assert "routewarden_audit_violations{" not in telemetry.metrics()[0].decode()
    state.apply("HTTPRoute", {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                              "metadata": {"name": "any", "namespace": "apples"},
                              "spec": {"parentRefs": [{"name": "shared", "namespace": "infra"}]}})
    state.mark_synced("HTTPRoute")
    for _ in range(50):
        if "routewarden_audit_violations{" in telemetry.metrics()[0].decode():
            break
        await asyncio.sleep(1.05 / 50)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert 'rule="attachment/GatewayNotFound"' in telemetry.metrics()[0].decode()


def test_an_audit_interval_of_zero_turns_the_audit_off() -> None:
    """``--audit-interval 0`` gives no background task."""
    assert audit_hook(cluster(), PolicyStore(initial=POLICIES), Telemetry(), interval=0) is None
