"""The engine's own decisions: what it does not judge, bad objects, exemptions, a stale view."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from webhook.admission import AdmissionRequest, UserInfo, parse_review
from webhook.decision import Mode
from webhook.engine import VALIDATED_OPERATIONS, decide
from webhook.offline import synthesize_request
from webhook.policy.loader import load_documents
from webhook.state.store import ClusterState

REPO = Path(__file__).resolve().parents[1]
REVIEWS = REPO / ".." / "shared" / "admission-reviews"
CLUSTER = [d for d in yaml.safe_load_all((REPO / "tests/scenarios/_shared/cluster.yaml").read_text()) if d]
POLICY = """
apiVersion: routewarden.dev/v1alpha1
kind: TenancyPolicy
metadata: {name: p}
spec:
  hostnames: {required: true}
  references: {requireReferenceGrant: true}
  exempt:
    namespaces: [kube-system]
    users: [admin]
    serviceAccounts: [flux-system/kustomize-controller]
"""


def policies(extra: str = ""):
    return load_documents([("p.yaml", POLICY + extra)])


def route(name: str = "r", namespace: str = "cherries", **spec) -> dict:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"parentRefs": [{"name": "shared", "namespace": "infra"}], **spec}}


def fixture(name: str) -> AdmissionRequest:
    return parse_review(json.loads((REVIEWS / f"{name}.json").read_text()))


@pytest.mark.parametrize("name", ["service-create-clusterip.validate", "gatewayclass-create.validate",
                                  "httproute-delete.validate", "referencegrant-create-v1beta1.validate"])
def test_objects_without_rules_are_allowed_untouched(name: str) -> None:
    """Kinds and operations nothing governs are allowed with no warnings and no patch."""
    decision = decide(fixture(name), policies(), ClusterState.from_objects(CLUSTER))
    assert decision.allowed and not decision.warnings and not decision.patch and not decision.violations


def test_every_violation_is_reported_not_only_the_first() -> None:
    """One pass lists all problems: attachment, hostnames and references together."""
    obj = route(rules=[{"backendRefs": [{"name": "x", "namespace": "apples"}, {"name": "y", "namespace": "bananas"}]}])
    decision = decide(synthesize_request(obj), policies(), ClusterState.from_objects(CLUSTER))
    assert not decision.allowed
    assert decision.rules == ("attachment/NotAllowedByListeners", "hostnames/HostnameRequired",
                              "references/RefNotPermitted")
    assert len([v for v in decision.violations if v.rule == "references/RefNotPermitted"]) == 2
    assert decision.message.startswith("4 problems: (1) NotAllowedByListeners")
    assert {v.field for v in decision.violations} >= {"spec.parentRefs[0]", "spec.hostnames",
                                                      "spec.rules[0].backendRefs[0]", "spec.rules[0].backendRefs[1]"}


@pytest.mark.parametrize("user", [
    UserInfo(username="admin"),
    UserInfo(username="system:serviceaccount:flux-system:kustomize-controller", groups=("system:serviceaccounts",)),
], ids=["user", "service-account"])
def test_exempt_requesters_are_not_judged(user: UserInfo) -> None:
    """Exemptions by user and by ServiceAccount skip the policy."""
    decision = decide(synthesize_request(route(), user=user), policies(), ClusterState.from_objects(CLUSTER))
    assert decision.allowed and not decision.violations


def test_exempt_namespaces_are_not_judged() -> None:
    """Exemption by the request's namespace."""
    decision = decide(synthesize_request(route(namespace="kube-system")), policies(), ClusterState.from_objects(CLUSTER))
    assert decision.allowed and not decision.violations


@pytest.mark.parametrize(("spec", "field"), [
    ({"hostnames": "not-a-list"}, "spec.hostnames"),
    ({"parentRefs": [{"name": 5}]}, "spec.parentRefs[0].name"),
    ({"parentRefs": [{"name": "g", "port": "80"}]}, "spec.parentRefs[0].port"),
    ({"rules": [{"backendRefs": [7]}]}, "spec.rules[0].backendRefs[0]"),
])
def test_an_object_of_the_wrong_shape_is_refused_with_the_field(spec: dict, field: str) -> None:
    """Wrong types (possible before schema validation) are a 400 denial naming the field, not a crash."""
    obj = route()
    obj["spec"].update(spec)
    decision = decide(synthesize_request(obj), policies(), ClusterState.from_objects(CLUSTER))
    assert not decision.allowed and decision.code == 400 and field in decision.message


def test_the_mutating_path_leaves_a_wrongly_shaped_object_alone() -> None:
    """The mutating webhook never denies for shape; it allows without a patch."""
    obj = route(hostnames="not-a-list")
    decision = decide(synthesize_request(obj), policies(), ClusterState.from_objects(CLUSTER), webhook="mutate")
    assert decision.allowed and not decision.patch


def online_state(*, synced: bool) -> ClusterState:
    state = ClusterState(expected_kinds=["Namespace", "Gateway", "HTTPRoute", "ReferenceGrant"])
    for obj in CLUSTER:
        state.apply(obj["kind"], obj)
    if synced:
        for kind in state.expected_kinds:
            state.mark_synced(kind)
    return state


def test_an_unsynced_view_downgrades_state_rules_to_warnings() -> None:
    """Before the first sync, a denial that reads the view becomes a warning that says why."""
    obj = route(hostnames=["c.example.com"])
    decision = decide(synthesize_request(obj), policies(), online_state(synced=False))
    assert decision.allowed
    assert any("has not synced yet" in w for w in decision.warnings)
    assert [v.mode for v in decision.violations] == [Mode.WARN]


def test_an_unsynced_view_fails_closed_when_the_policy_says_so() -> None:
    """staleState.mode enforce denies with StaleClusterView instead of guessing."""
    obj = route(hostnames=["c.example.com"])
    decision = decide(synthesize_request(obj), policies("  staleState: {mode: enforce}\n"), online_state(synced=False))
    assert not decision.allowed and decision.reason == "StaleClusterView"


def test_a_view_older_than_the_limit_is_stale() -> None:
    """maxAgeSeconds: a view not confirmed for longer degrades like an unsynced one."""
    state = online_state(synced=True)
    obj = route(hostnames=["c.example.com"])
    extra = "  staleState: {mode: enforce, maxAgeSeconds: 60}\n"
    fresh = decide(synthesize_request(obj), policies(extra), state)
    assert fresh.reason == "NotAllowedByListeners"
    stale = decide(synthesize_request(obj), policies(extra), state, now=time.monotonic() + 10_000)
    assert stale.reason == "StaleClusterView"


def test_rules_that_do_not_read_the_view_still_deny_while_it_is_stale() -> None:
    """HostnameRequired depends only on the object: a stale view does not soften it."""
    decision = decide(synthesize_request(route(namespace="apples")), policies(), online_state(synced=False))
    assert not decision.allowed and decision.reason == "HostnameRequired"


def test_status_subresource_requests_are_not_judged() -> None:
    """A write to a sub-resource is allowed untouched."""
    request = synthesize_request(route())
    request = AdmissionRequest(**{**{f: getattr(request, f) for f in request.__slots__}, "sub_resource": "status"})
    assert decide(request, policies(), ClusterState.from_objects(CLUSTER)).violations == ()


def test_an_unknown_gateway_only_warns_even_when_attachment_enforces() -> None:
    """unknownGateway (default warn) decides apply-order findings; attachment.mode does not."""
    obj = route(name="early", namespace="apples", hostnames=["e.apples.example.com"])
    obj["spec"]["parentRefs"] = [{"name": "not-yet", "namespace": "infra"}]
    state = ClusterState.from_objects(CLUSTER)
    enforcing = decide(synthesize_request(obj), policies("  attachment: {mode: enforce}\n"), state)
    assert enforcing.allowed and enforcing.rules == ("attachment/GatewayNotFound",)
    strict = decide(synthesize_request(obj), policies("  rules: {attachment/GatewayNotFound: enforce}\n"), state)
    assert not strict.allowed and strict.reason == "GatewayNotFound"


def test_a_route_already_in_the_cluster_keeps_its_hostname_against_a_newcomer() -> None:
    """check --cluster evaluates existing routes as CREATEs too: only the later claimant is refused."""
    unique = "  hostnames: {unique: true}\n"
    existing = route(name="shop", namespace="apples", hostnames=["shop.example.com"])
    existing["metadata"]["creationTimestamp"] = "2024-01-01T00:00:00Z"
    newcomer = route(name="shop", namespace="bananas", hostnames=["shop.example.com"])
    state = ClusterState.from_objects([*CLUSTER, existing, newcomer])
    kept = decide(synthesize_request(existing), policies(unique), state)
    assert "hostnames/HostnameConflict" not in kept.rules
    refused = decide(synthesize_request(newcomer), policies(unique), state)
    assert "hostnames/HostnameConflict" in refused.rules and "namespace apples" in refused.message


def test_an_update_adding_a_hostname_a_newer_route_serves_is_refused() -> None:
    """The oldest route wins a contested name, so an old route may not add one a newer route serves."""
    unique = "  hostnames: {unique: true}\n"
    newer = route(name="shop", namespace="bananas", hostnames=["shop.example.com"])
    newer["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    before = route(name="old", namespace="apples", hostnames=["old.example.com"])
    before["metadata"]["creationTimestamp"] = "2020-01-01T00:00:00Z"
    after = route(name="old", namespace="apples", hostnames=["old.example.com", "shop.example.com"])
    after["metadata"]["creationTimestamp"] = "2020-01-01T00:00:00Z"
    state = ClusterState.from_objects([*CLUSTER, newer, before])
    decision = decide(synthesize_request(after, operation="UPDATE", old=before), policies(unique), state)
    assert "hostnames/HostnameConflict" in decision.rules and "namespace bananas" in decision.message


def test_the_same_finding_from_two_policies_keeps_the_strictest_mode() -> None:
    """A warn policy listed before an enforce policy does not soften the enforced finding."""
    soft = POLICY.replace("name: p}", "name: a-soft}") + "  mode: warn\n"
    strict = POLICY.replace("name: p}", "name: b-strict}")
    both = load_documents([("a.yaml", soft), ("b.yaml", strict)])
    decision = decide(synthesize_request(route(namespace="apples")), both, ClusterState.from_objects(CLUSTER))
    assert [p.name for p in both.tenancy] == ["a-soft", "b-strict"]
    assert not decision.allowed and decision.reason == "HostnameRequired"
    assert [(v.rule, v.mode, v.policy) for v in decision.violations] == [
        ("hostnames/HostnameRequired", Mode.ENFORCE, "b-strict")]


@pytest.mark.parametrize("kind", ["HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute", "ListenerSet",
                                  "Gateway", "ReferenceGrant"])
@pytest.mark.parametrize("operation", ["CREATE", "UPDATE", "DELETE"])
def test_only_the_operations_a_rule_reads_are_judged(kind: str, operation: str) -> None:
    """VALIDATED_OPERATIONS is the dispatch: what it leaves out (a route DELETE) is allowed untouched."""
    # Labels of the wrong type: any rule that reads the object refuses it as malformed.
    obj = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": kind,
           "metadata": {"name": "x", "namespace": "apples", "labels": "not-a-map"}, "spec": {}}
    request = synthesize_request(None if operation == "DELETE" else obj, operation=operation,
                                 old=None if operation == "CREATE" else {**obj, "spec": {"changed": True}})
    decision = decide(request, policies(), ClusterState.from_objects(CLUSTER))
    assert (decision.code == 400) is (operation in VALIDATED_OPERATIONS[kind]), decision
