"""CREATE and UPDATE of the captured Cilium Service: what comes back, what stays, what is never touched.

The captures were written by the harness admin; here they arrive as Cilium's operator
writes its Service (a tenant's write of the same Service is in test_mutation_trust.py)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from test_mutation_helpers import CILIUM_OPERATOR, REPO, gateway, mutate, review, state_of
from test_mutation_helpers import captured as captured_review

from webhook.admission import parse_review
from webhook.policy.loader import load_paths
from webhook.state.store import ClusterState

HOSTNAME = "external-dns.alpha.kubernetes.io/hostname"
SCHEME = "service.beta.kubernetes.io/aws-load-balancer-scheme"
BACKEND = "service.beta.kubernetes.io/aws-load-balancer-backend-protocol"
SHARED_HOSTNAMES = "*.example.com,apples.example.com"  # Gateway infra/shared: http *.example.com, https apples.example.com
RECORD = "routewarden.dev/external-dns-hostname"


def captured(name: str) -> dict[str, Any]:
    return captured_review(name, writer=CILIUM_OPERATOR)


@pytest.fixture(scope="module")
def cilium_eks() -> Any:
    """policies/servicepolicy-cilium-eks.yaml, as the webhook loads it."""
    return load_paths([REPO / "policies" / "servicepolicy-cilium-eks.yaml"])


@pytest.fixture
def shared() -> ClusterState:
    """The cluster view holding the captured Gateway infra/shared (class cilium)."""
    return state_of(captured("gateway-create")["request"]["object"])


def fixture_request(name: str) -> Any:
    return parse_review(captured(name))


def test_the_captured_create_gets_the_computed_hostname_the_missing_annotation_and_the_class(cilium_eks: Any, shared: ClusterState) -> None:
    """CREATE: the hostname typed by hand is replaced by the listeners' names; class and protocol are added."""
    decision, stored = mutate(fixture_request("service-create-generated-loadbalancer"), cilium_eks, shared)
    assert sorted(decision.patch, key=lambda op: op["path"]) == [
        {"op": "replace", "path": "/metadata/annotations/external-dns.alpha.kubernetes.io~1hostname", "value": SHARED_HOSTNAMES},
        {"op": "add", "path": "/metadata/annotations/routewarden.dev~1external-dns-hostname",
         "value": f"external-dns.alpha.kubernetes.io/hostname={SHARED_HOSTNAMES}"},
        {"op": "add", "path": "/metadata/annotations/service.beta.kubernetes.io~1aws-load-balancer-backend-protocol", "value": "tcp"},
        {"op": "add", "path": "/spec/loadBalancerClass", "value": "service.k8s.aws/nlb"},
    ]
    again, _ = mutate(review(stored), cilium_eks, shared)
    assert again.patch == ()


def test_annotations_the_controller_dropped_come_back_on_update(cilium_eks: Any, shared: ClusterState) -> None:
    """The captured UPDATE lost the external-dns hostname: the patch puts it back; a re-run gives none."""
    request = fixture_request("service-update-annotation-removed")
    assert HOSTNAME not in request.object["metadata"]["annotations"]
    decision, stored = mutate(request, cilium_eks, shared)
    ops = {op["path"]: op for op in decision.patch}
    assert ops["/metadata/annotations/external-dns.alpha.kubernetes.io~1hostname"] == {
        "op": "add", "path": "/metadata/annotations/external-dns.alpha.kubernetes.io~1hostname", "value": SHARED_HOSTNAMES
    }
    assert stored["metadata"]["annotations"][SCHEME] == "internet-facing"
    again, _ = mutate(review(stored, operation="UPDATE", old=request.old_object), cilium_eks, shared)
    assert again.patch == ()


def test_an_annotation_a_user_added_stays_on_update(cilium_eks: Any, shared: ClusterState) -> None:
    """Annotations routewarden does not manage are never removed or changed."""
    raw = captured("service-update-annotation-removed")
    raw["request"]["object"]["metadata"]["annotations"]["example.com/owner"] = "platform-team"
    decision, stored = mutate(parse_review(raw), cilium_eks, shared)
    assert stored["metadata"]["annotations"]["example.com/owner"] == "platform-team"
    assert all(op["op"] == "add" for op in decision.patch)


def test_the_class_is_set_on_create_and_never_added_on_update(cilium_eks: Any, shared: ClusterState) -> None:
    """UPDATE of a Service created without the class: no class in the patch, a warning instead."""
    decision, stored = mutate(fixture_request("service-update-annotation-removed"), cilium_eks, shared)
    assert "loadBalancerClass" not in stored["spec"]
    assert not any(op["path"].startswith("/spec") for op in decision.patch)
    assert len(decision.warnings) == 1 and "immutable" in decision.warnings[0]


def test_a_different_class_on_update_is_reported_not_patched(cilium_eks: Any, shared: ClusterState) -> None:
    """UPDATE of a Service that has another class: left alone (changing it would be refused), with a warning."""
    raw = captured("service-update-annotation-removed")
    for key in ("object", "oldObject"):
        raw["request"][key]["spec"]["loadBalancerClass"] = "example.com/other"
    decision, stored = mutate(parse_review(raw), cilium_eks, shared)
    assert stored["spec"]["loadBalancerClass"] == "example.com/other"
    assert any("'example.com/other'" in w for w in decision.warnings)


def test_a_controller_rewrite_that_drops_the_stored_class_keeps_it(cilium_eks: Any, shared: ClusterState) -> None:
    """The stored Service has the class; the controller's write omits it: it is kept, so the update is not refused."""
    _, created = mutate(fixture_request("service-create-generated-loadbalancer"), cilium_eks, shared)
    old = copy.deepcopy(created)
    rewrite = copy.deepcopy(created)
    del rewrite["spec"]["loadBalancerClass"]
    rewrite["metadata"]["annotations"] = {SCHEME: "internet-facing"}
    decision, stored = mutate(review(rewrite, operation="UPDATE", old=old), cilium_eks, shared)
    assert stored["spec"]["loadBalancerClass"] == "service.k8s.aws/nlb"
    assert stored["metadata"]["annotations"] == created["metadata"]["annotations"]
    assert decision.warnings == ()


def test_the_hostname_follows_the_gateway_listeners_on_the_next_update(cilium_eks: Any) -> None:
    """Listeners added or removed on the Gateway change the hostname at the Service's next UPDATE."""
    service = captured("service-update-annotation-removed")["request"]["object"]
    state = state_of(gateway("shared", "infra", class_name="cilium", hostnames=["echo.example.com"]))
    _, stored = mutate(review(service, operation="UPDATE", old=service), cilium_eks, state)
    assert stored["metadata"]["annotations"][HOSTNAME] == "echo.example.com"

    state.apply("Gateway", gateway("shared", "infra", class_name="cilium",
                                   hostnames=["echo.example.com", "api.example.com", None, "API.example.com."]))
    decision, stored = mutate(review(stored, operation="UPDATE", old=stored), cilium_eks, state)
    assert sorted(decision.patch, key=lambda op: op["path"]) == [
        {"op": "replace", "path": "/metadata/annotations/external-dns.alpha.kubernetes.io~1hostname",
         "value": "api.example.com,echo.example.com"},
        {"op": "replace", "path": f"/metadata/annotations/{RECORD.replace('/', '~1')}",
         "value": "external-dns.alpha.kubernetes.io/hostname=api.example.com,echo.example.com"},
    ]

    state.apply("Gateway", gateway("shared", "infra", class_name="cilium", hostnames=["api.example.com"]))
    _, stored = mutate(review(stored, operation="UPDATE", old=stored), cilium_eks, state)
    assert stored["metadata"]["annotations"][HOSTNAME] == "api.example.com"


def test_a_plain_clusterip_service_gets_no_patch(cilium_eks: Any, shared: ClusterState) -> None:
    """The captured ClusterIP backend Service is not generated and not a load balancer: untouched."""
    decision, _ = mutate(fixture_request("service-create-clusterip"), cilium_eks, shared)
    assert (decision.patch, decision.warnings) == ((), ())


def test_a_load_balancer_service_no_gateway_generated_gets_no_patch(cilium_eks: Any, shared: ClusterState) -> None:
    """A team's own LoadBalancer Service in the Gateway's namespace is never touched."""
    raw = captured("service-create-clusterip")
    obj = raw["request"]["object"]
    obj["spec"]["type"] = "LoadBalancer"
    obj["metadata"]["namespace"] = raw["request"]["namespace"] = "infra"
    decision, _ = mutate(parse_review(raw), cilium_eks, shared)
    assert (decision.patch, decision.warnings) == ((), ())


def test_a_generated_service_whose_gateway_is_not_in_the_view_is_left_with_a_warning(cilium_eks: Any) -> None:
    """Without its Gateway nothing can be matched or computed: no patch, and the user is told why."""
    decision, _ = mutate(fixture_request("service-create-generated-loadbalancer"), cilium_eks, ClusterState())
    assert decision.patch == ()
    assert "not in the cluster view" in decision.warnings[0] and "at creation" in decision.warnings[0]


def test_a_service_of_a_gateway_no_policy_matches_gets_no_patch(cilium_eks: Any) -> None:
    """Gateway infra/shared of class istio is outside the cilium-eks policy."""
    state = state_of(gateway("shared", "infra", class_name="istio", hostnames=["a.example.com"]))
    decision, _ = mutate(fixture_request("service-create-generated-loadbalancer"), cilium_eks, state)
    assert (decision.patch, decision.warnings) == ((), ())


def test_annotations_of_the_wrong_type_leave_the_service_unpatched_with_a_warning(cilium_eks: Any, shared: ClusterState) -> None:
    """Before schema validation an annotation value may be a number: routewarden does not guess."""
    raw = captured("service-create-generated-loadbalancer")
    raw["request"]["object"]["metadata"]["annotations"][SCHEME] = 1
    decision, _ = mutate(parse_review(raw), cilium_eks, shared)
    assert decision.patch == ()
    assert "did not mutate" in decision.warnings[0]
