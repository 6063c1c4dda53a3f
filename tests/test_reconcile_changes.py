"""Change detection: which Gateways and Services a change may affect (ServicePolicy, Gateway,
ListenerSet, route, Service, Namespace), before and after."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from test_mutation_helpers import policies

from webhook.reconcile.changes import EVERYTHING, affected, expand, gateway, policy_targets, service
from webhook.state.store import ClusterState

GROUP = "gateway.networking.k8s.io/v1"


def gw_obj(namespace: str, name: str, class_name: str = "cilium", **labels: str) -> dict[str, Any]:
    return {"apiVersion": GROUP, "kind": "Gateway", "metadata": {"namespace": namespace, "name": name, "labels": labels},
            "spec": {"gatewayClassName": class_name, "listeners": [
                {"name": "http", "port": 80, "protocol": "HTTP", "allowedRoutes": {"namespaces": {"from": "All"}}}]}}


def route(namespace: str, name: str, *parents: dict[str, Any], kind: str = "HTTPRoute") -> dict[str, Any]:
    return {"apiVersion": GROUP, "kind": kind, "metadata": {"namespace": namespace, "name": name},
            "spec": {"parentRefs": list(parents), "hostnames": [f"{name}.example.com"]}}


def listenerset(namespace: str, name: str, parent: str) -> dict[str, Any]:
    return {"apiVersion": GROUP, "kind": "ListenerSet", "metadata": {"namespace": namespace, "name": name},
            "spec": {"parentRef": {"name": parent, "namespace": "infra"},
                     "listeners": [{"name": "l", "port": 80, "protocol": "HTTP", "hostname": "ls.example.com"}]}}


def svc(namespace: str, name: str, gateway_name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {
        "namespace": namespace, "name": name,
        "labels": {"io.cilium.gateway/owning-gateway": gateway_name,
                   "gateway.networking.k8s.io/gateway-name": gateway_name}},
        "spec": {"type": "LoadBalancer"}}


SHARED = {"name": "shared", "namespace": "infra"}
OTHER = {"name": "other", "namespace": "infra"}
ON_SET = {"group": "gateway.networking.k8s.io", "kind": "ListenerSet", "name": "apples-set"}
MESH = {"group": "", "kind": "Service", "name": "shared", "namespace": "infra"}


@pytest.fixture
def services() -> ClusterState:
    """The reconciler's own view of generated Services."""
    view = ClusterState()
    for obj in (svc("infra", "cilium-gateway-shared", "shared"), svc("infra", "cilium-gateway-other", "other"),
                svc("apples", "cilium-gateway-own", "own")):
        view.apply("Service", obj)
    return view


@pytest.fixture
def state() -> ClusterState:
    objects = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n, "labels": {"team": n}}}
        for n in ("infra", "apples", "bananas")
    ] + [
        gw_obj("infra", "shared"), gw_obj("infra", "other", "istio", tier="edge"), gw_obj("apples", "own"),
        listenerset("apples", "apples-set", "other"),
        route("apples", "shop", SHARED), route("bananas", "web", OTHER),
    ]
    return ClusterState.from_objects(copy.deepcopy(objects))


@pytest.mark.parametrize(
    ("kind", "old", "new", "expected"),
    [
        ("Gateway", None, gw_obj("infra", "shared"), {gateway("infra", "shared")}),
        ("Gateway", gw_obj("infra", "shared"), None, {gateway("infra", "shared")}),
        ("ListenerSet", listenerset("apples", "s", "shared"), listenerset("apples", "s", "other"),
         {gateway("infra", "shared"), gateway("infra", "other")}),
        ("HTTPRoute", None, route("apples", "new", SHARED), {gateway("infra", "shared")}),
        ("HTTPRoute", route("apples", "moved", SHARED), route("apples", "moved", OTHER),
         {gateway("infra", "shared"), gateway("infra", "other")}),
        ("HTTPRoute", route("apples", "gone", SHARED, OTHER), None,
         {gateway("infra", "shared"), gateway("infra", "other")}),
        ("GRPCRoute", None, route("apples", "g", {"name": "own"}, kind="GRPCRoute"), {gateway("apples", "own")}),
        ("HTTPRoute", None, route("apples", "on-set", ON_SET), {gateway("infra", "other")}),
        ("HTTPRoute", None, route("apples", "mesh", MESH), set()),
        ("Service", None, svc("infra", "cilium-gateway-shared", "shared"), {service("infra", "cilium-gateway-shared")}),
        ("Namespace", None, {"metadata": {"name": "bananas"}}, {gateway("infra", "other")}),
        ("Namespace", None, {"metadata": {"name": "apples"}}, {gateway("apples", "own"), gateway("infra", "shared")}),
        ("ReferenceGrant", None, {"metadata": {"namespace": "infra", "name": "g"}}, set()),
        ("HTTPRoute", None, None, set()),
    ],
    ids=["gateway-added", "gateway-deleted", "listenerset-moved", "route-added", "route-moved",
         "route-deleted-from-two", "grpcroute-same-namespace-default", "route-on-a-listenerset", "mesh-route",
         "service", "namespace-with-routes", "namespace-with-gateway-and-routes", "grant-affects-no-service",
         "nothing"],
)
def test_each_change_reaches_the_gateways_it_names_before_and_after(
    state: ClusterState, kind: str, old: Any, new: Any, expected: set[tuple[str, str, str]]
) -> None:
    """Gateway -> itself; ListenerSet -> its parent; route -> its parent Gateways, old and new; Service -> itself."""
    assert affected(kind, old, new, state) == expected


def test_a_relist_reaches_everything(state: ClusterState, services: ClusterState) -> None:
    """A SYNCED event (the kind was listed again) may hide any change: everything is reconciled."""
    from webhook.reconcile.changes import targets_of

    assert targets_of("HTTPRoute", None, state) == {EVERYTHING}
    assert expand({EVERYTHING}, state, services) == [("apples", "cilium-gateway-own"), ("infra", "cilium-gateway-other"),
                                           ("infra", "cilium-gateway-shared")]


def test_gateway_targets_expand_to_the_services_generated_for_them(state: ClusterState, services: ClusterState) -> None:
    """A Gateway stands for the Services the mutation's identification names for it; a Service for itself."""
    assert expand({gateway("infra", "shared"), service("apples", "cilium-gateway-own")}, state, services) == [
        ("apples", "cilium-gateway-own"), ("infra", "cilium-gateway-shared")]
    assert expand({gateway("infra", "missing")}, state, services) == []


POLICY = """\
apiVersion: routewarden.dev/v1alpha1
kind: ServicePolicy
metadata: {{name: {name}}}
spec:
  match: {match}
  service: {{annotations: {{example.com/a: "{value}"}}}}
"""


def policy_set(*docs: tuple[str, str, str]) -> Any:
    return policies("---\n".join(POLICY.format(name=n, match=m, value=v) for n, m, v in docs))


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ([], [("p", "{gatewayClassNames: [istio]}", "1")], {gateway("infra", "other")}),
        ([("p", "{gatewayClassNames: [istio]}", "1")], [], {gateway("infra", "other")}),
        ([("p", "{gatewayClassNames: [istio]}", "1")], [("p", "{gatewayClassNames: [istio]}", "2")],
         {gateway("infra", "other")}),
        ([("p", "{gatewayClassNames: [istio]}", "1")], [("p", "{gatewayClassNames: [cilium]}", "1")],
         {gateway("infra", "other"), gateway("infra", "shared"), gateway("apples", "own")}),
        ([("p", "{gatewayClassNames: [istio]}", "1"), ("q", "{namespaces: {names: [apples]}}", "1")],
         [("p", "{gatewayClassNames: [istio]}", "1"), ("q", "{namespaces: {names: [apples]}}", "2")],
         {gateway("apples", "own")}),
        ([("p", "{gatewayLabels: {matchLabels: {tier: edge}}}", "1")],
         [("p", "{gatewayLabels: {matchLabels: {tier: edge}}}", "1")], set()),
    ],
    ids=["added", "removed", "changed-values", "changed-match-old-and-new", "only-the-changed-one", "unchanged"],
)
def test_a_servicepolicy_change_reaches_every_gateway_it_matches_before_or_after(
    state: ClusterState, before: list[tuple[str, str, str]], after: list[tuple[str, str, str]],
    expected: set[tuple[str, str, str]],
) -> None:
    """Only added, removed or changed ServicePolicies count, with their old and new matches."""
    old = policy_set(*before) if before else policies("")
    new = policy_set(*after) if after else policies("")
    assert policy_targets(old, new, state) == expected
