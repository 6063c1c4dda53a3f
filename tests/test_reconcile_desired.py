"""What the reconciler applies: the mutation's own values, in full, minus what it would leave to others."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from test_mutation_helpers import REPO, captured, gateway, mutate, policies, review, state_of

from webhook.policy.loader import load_paths
from webhook.reconcile.desired import (
    FIELD_MANAGER,
    Change,
    Fields,
    Owned,
    desired_fields,
    owned_by,
    plan,
    value_at,
)
from webhook.state.store import ClusterState

HOSTNAME = "external-dns.alpha.kubernetes.io/hostname"
RECORD = "routewarden.dev/external-dns-hostname"  # the Service mutation's record of the hostname it set
SCHEME = "service.beta.kubernetes.io/aws-load-balancer-scheme"
BACKEND = "service.beta.kubernetes.io/aws-load-balancer-backend-protocol"


@pytest.fixture(scope="module")
def cilium_eks() -> Any:
    return load_paths([REPO / "policies" / "servicepolicy-cilium-eks.yaml"])


@pytest.fixture
def shared() -> ClusterState:
    return state_of(captured("gateway-create")["request"]["object"])


def service_policy(name: str, spec: str) -> Any:
    """One ServicePolicy named ``name`` with ``spec`` (indented YAML), through the real loader."""
    return policies(f"apiVersion: routewarden.dev/v1alpha1\nkind: ServicePolicy\nmetadata: {{name: {name}}}\n"
                    f"spec:\n{spec}")


def generated() -> dict[str, Any]:
    """The Service Cilium generated for Gateway infra/shared, as kube-apiserver stored it."""
    return copy.deepcopy(captured("service-create-generated-loadbalancer")["request"]["object"])


def owning(service: dict[str, Any], *, annotations: tuple[str, ...] = (), labels: tuple[str, ...] = (),
           etp: bool = False) -> dict[str, Any]:
    """``service`` with a managedFields entry of routewarden's Apply owning these fields."""
    meta: dict[str, Any] = {}
    if annotations:
        meta["f:annotations"] = {f"f:{k}": {} for k in annotations}
    if labels:
        meta["f:labels"] = {f"f:{k}": {} for k in labels}
    fields: dict[str, Any] = {"f:metadata": meta} if meta else {}
    if etp:
        fields["f:spec"] = {"f:externalTrafficPolicy": {}}
    service["metadata"].setdefault("managedFields", []).append(
        {"manager": FIELD_MANAGER, "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1",
         "fieldsV1": fields})
    return service


def test_the_values_are_what_the_mutating_webhook_gives_the_same_service(cilium_eks: Any, shared: ClusterState) -> None:
    """Every annotation the webhook's UPDATE patch sets is desired with the same value; the class is not."""
    service = generated()
    desired = desired_fields(service, policies=cilium_eks, state=shared)
    _, stored = mutate(review(service, operation="UPDATE", old=service), cilium_eks, shared)
    assert desired.fields is not None
    assert set(desired.fields.annotations) == {HOSTNAME, SCHEME, BACKEND, RECORD}
    assert dict(desired.fields.annotations) == {k: stored["metadata"]["annotations"][k] for k in desired.fields.annotations}
    assert desired.fields.labels == {} and desired.fields.external_traffic_policy is None
    assert (desired.gateway, desired.implementation, desired.policies, desired.force) == (
        ("infra", "shared"), "cilium", ("cilium-eks",), False)


def test_the_plan_sets_what_differs_adopts_what_is_right_and_guards_the_resource_version(
    cilium_eks: Any, shared: ClusterState
) -> None:
    """The apply body holds every desired value (so routewarden owns them) and the read resourceVersion."""
    service = generated()
    service["metadata"]["resourceVersion"] = "42"
    desired = desired_fields(service, policies=cilium_eks, state=shared)
    todo = plan(service, desired.fields, owned_by(service))
    assert todo.changes == (
        Change(f"metadata.annotations[{HOSTNAME}]", "set", "*.example.com,apples.example.com", "apples.example.com"),
        Change(f"metadata.annotations[{RECORD}]", "set", f"{HOSTNAME}=*.example.com,apples.example.com", None),
        Change(f"metadata.annotations[{BACKEND}]", "set", "tcp", None),
        Change(f"metadata.annotations[{SCHEME}]", "adopt", "internet-facing", "internet-facing"),
    )
    assert todo.body == {"apiVersion": "v1", "kind": "Service", "metadata": {
        "name": "cilium-gateway-shared", "namespace": "infra", "resourceVersion": "42",
        "annotations": dict(desired.fields.annotations)}}
    assert "spec" not in todo.body  # never loadBalancerClass (immutable), and no traffic policy asked


def test_a_service_already_applied_and_owned_needs_nothing(cilium_eks: Any, shared: ClusterState) -> None:
    """Values right and owned by routewarden: no apply."""
    service = generated()
    desired = desired_fields(service, policies=cilium_eks, state=shared)
    service["metadata"]["annotations"].update(desired.fields.annotations)
    owning(service, annotations=tuple(desired.fields.annotations))
    again = desired_fields(service, policies=cilium_eks, state=shared)
    assert again.fields == desired.fields
    assert not plan(service, again.fields, owned_by(service)).needed


def test_a_value_routewarden_owns_and_no_longer_computes_is_left_out_to_be_removed(shared: ClusterState) -> None:
    """A policy that stopped asking for an annotation: the apply leaves it out, so server-side apply removes it."""
    policy = service_policy("p", """\
  match: {gatewayClassNames: [cilium]}
  service: {annotations: {example.com/kept: "yes"}}
""")
    service = owning(generated(), annotations=("example.com/dropped", "example.com/kept"))
    service["metadata"]["annotations"].update({"example.com/dropped": "old", "example.com/kept": "yes"})
    desired = desired_fields(service, policies=policy, state=shared)
    todo = plan(service, desired.fields, owned_by(service))
    assert todo.changes == (Change("metadata.annotations[example.com/dropped]", "remove", None, "old"),)
    assert todo.body["metadata"]["annotations"] == {"example.com/kept": "yes"}


def test_a_hostname_no_longer_computed_is_removed_only_when_routewarden_owns_it(shared: ClusterState) -> None:
    """No listener hostname left: the external-dns name routewarden applied goes; one it never owned stays."""
    policy = service_policy("dns", """\
  service:
    annotations: {example.com/x: "1"}
    externalDNS: {sources: [listeners]}
""")
    empty = state_of(gateway("shared", "infra", class_name="cilium", hostnames=[None]))
    mine = owning(generated(), annotations=(HOSTNAME, "example.com/x"))
    todo = plan(mine, desired_fields(mine, policies=policy, state=empty).fields, owned_by(mine))
    assert Change(f"metadata.annotations[{HOSTNAME}]", "remove", None, "apples.example.com") in todo.changes
    assert HOSTNAME not in todo.body["metadata"]["annotations"]
    theirs = generated()
    todo = plan(theirs, desired_fields(theirs, policies=policy, state=empty).fields, owned_by(theirs))
    assert all(HOSTNAME not in c.path for c in todo.changes)


def test_a_value_a_keep_policy_leaves_to_someone_else_is_not_applied(shared: ClusterState) -> None:
    """conflicts: keep and another value stored: the webhook keeps it, so the reconciler does not claim it."""
    policy = service_policy("keep", """\
  match: {gatewayClassNames: [cilium]}
  service:
    conflicts: keep
    annotations: {service.beta.kubernetes.io/aws-load-balancer-scheme: internal, example.com/new: "1"}
""")
    desired = desired_fields(generated(), policies=policy, state=shared)
    assert dict(desired.fields.annotations) == {"example.com/new": "1"}  # the stored scheme is internet-facing


def test_labels_and_traffic_policy_are_applied_and_kept_while_computed(shared: ClusterState) -> None:
    """Labels and externalTrafficPolicy the policy sets are desired; once owned they stay desired, not removed."""
    policy = service_policy("p", """\
  match: {gatewayClassNames: [cilium]}
  service: {labels: {example.com/team: platform}, externalTrafficPolicy: Local}
""")
    service = generated()
    desired = desired_fields(service, policies=policy, state=shared)
    assert desired.fields == Fields({}, {"example.com/team": "platform"}, "Local")
    service["metadata"]["labels"]["example.com/team"] = "platform"
    service["spec"]["externalTrafficPolicy"] = "Local"
    owning(service, labels=("example.com/team",), etp=True)
    again = desired_fields(service, policies=policy, state=shared)
    assert again.fields == desired.fields
    assert not plan(service, again.fields, owned_by(service)).needed
    assert plan(service, Fields(), owned_by(service)).changes == (
        Change("metadata.labels[example.com/team]", "remove", None, "platform"),
        Change("spec[externalTrafficPolicy]", "remove", None, "Local"),
    )


@pytest.mark.parametrize(
    ("edit", "state_objects", "why"),
    [
        (lambda s: s["metadata"].pop("labels") and s["metadata"].pop("ownerReferences"), None, "not a generated"),
        (lambda s: s["spec"].update(type="ClusterIP"), None, ""),
        (lambda s: None, [], "ownerReference"),
        (lambda s: s["metadata"].update(namespace="elsewhere", ownerReferences=[]), None, ""),
    ],
    ids=["not-generated", "not-a-load-balancer", "gateway-not-in-view", "gateway-of-another-namespace"],
)
def test_a_service_the_mutation_does_not_shape_gets_nothing(
    cilium_eks: Any, shared: ClusterState, edit: Any, state_objects: Any, why: str
) -> None:
    """Whatever makes the webhook leave a Service alone makes the reconciler leave it alone."""
    service = generated()
    edit(service)
    view = shared if state_objects is None else state_of(*state_objects)
    desired = desired_fields(service, policies=cilium_eks, state=view)
    assert desired.fields is None
    assert why in desired.why


def test_without_a_matching_policy_only_the_recorded_hostname_is_taken_back(shared: ClusterState) -> None:
    """No policy matches any more: what routewarden applied stays (a cloud load balancer annotation vanishing with a
    policy file could re-provision the load balancer), except the external-dns hostname it recorded."""
    policy = service_policy("p", """\
  match: {gatewayClassNames: [istio]}
  service: {annotations: {example.com/a: "1"}}
""")
    service = owning(generated(), annotations=(SCHEME, HOSTNAME, RECORD))
    service["metadata"]["annotations"][RECORD] = f"{HOSTNAME}=apples.example.com"
    desired = desired_fields(service, policies=policy, state=shared)
    assert desired.fields == Fields({SCHEME: "internet-facing"}) and desired.policies == ()
    assert plan(service, desired.fields, owned_by(service)).changes == (
        Change(f"metadata.annotations[{HOSTNAME}]", "remove", None, "apples.example.com"),
        Change(f"metadata.annotations[{RECORD}]", "remove", None, f"{HOSTNAME}=apples.example.com"),
    )
    assert not plan(generated(), desired_fields(generated(), policies=policy, state=shared).fields, Owned()).needed


@pytest.mark.parametrize(
    ("settings", "force"),
    [([None], False), ([True], True), ([False], False), ([True, None], True), ([True, False], False), ([False, True], True)],
)
def test_force_is_the_last_matching_policy_that_says(shared: ClusterState, settings: list[bool | None], force: bool) -> None:
    """forceConflicts folds like every other setting: later policies (priority, then name) win."""
    docs = []
    for i, setting in enumerate(settings):
        line = "" if setting is None else f", forceConflicts: {str(setting).lower()}"
        docs.append(f"""\
apiVersion: routewarden.dev/v1alpha1
kind: ServicePolicy
metadata: {{name: p{i}}}
spec:
  priority: {i}
  service: {{annotations: {{example.com/p{i}: "1"}}{line}}}
""")
    assert desired_fields(generated(), policies=policies("---\n".join(docs)), state=shared).force is force


def test_ownership_is_read_from_real_managed_fields() -> None:
    """The captured Service's managedFields (other managers only) give routewarden nothing; its Apply entry counts."""
    service = generated()
    assert owned_by(service) == Owned()
    owning(service, annotations=(HOSTNAME,), labels=("a",), etp=True)
    service["metadata"]["managedFields"][-1]["fieldsV1"]["f:metadata"]["f:annotations"]["."] = {}
    assert owned_by(service) == Owned(frozenset({HOSTNAME}), frozenset({"a"}), True)
    assert owned_by(service, "someone-else") == Owned()


def test_value_at_reads_the_paths_of_a_plan() -> None:
    """Plan paths name annotations, labels and spec fields."""
    service = generated()
    assert value_at(service, f"metadata.annotations[{SCHEME}]") == "internet-facing"
    assert value_at(service, "metadata.labels[io.cilium.gateway/owning-gateway]") == "shared"
    assert value_at(service, "spec[externalTrafficPolicy]") == service["spec"]["externalTrafficPolicy"]
    assert value_at(service, "metadata.annotations[missing]") is None


@pytest.mark.parametrize(
    ("namespace", "trusted"),
    [("envoy-gateway-system", True), ("infra", True), ("apples", False)],
    ids=["controller-namespace", "gateway-namespace-mode", "tenant-look-alike"],
)
def test_the_trust_rules_of_the_mutation_decide_which_services_are_reconciled(
    cilium_eks: Any, shared: ClusterState, namespace: str, trusted: bool
) -> None:
    """Without a writer, an Envoy Gateway Service naming infra/shared is the controller's only where Envoy Gateway
    creates Services; a look-alike in a tenant's namespace gets nothing (it would publish infra/shared's names)."""
    service = generated()
    service["metadata"].update(namespace=namespace, ownerReferences=[], labels={
        "gateway.envoyproxy.io/owning-gateway-name": "shared", "gateway.envoyproxy.io/owning-gateway-namespace": "infra"})
    desired = desired_fields(service, policies=cilium_eks, state=shared)
    assert (desired.fields is not None) is trusted
    assert desired.gateway == ("infra", "shared") and desired.implementation == "envoy-gateway"
    if not trusted:
        assert "not in namespace apples" in desired.why
