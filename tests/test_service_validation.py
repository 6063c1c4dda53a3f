"""services/ImpersonatesGeneratedService through /validate over real HTTPS, in warn (the default) and enforce.

A TenancyPolicy that governs the imitated Gateway reports a LoadBalancer Service that
carries a gateway controller's marks and was written by anyone but that controller; with
``enforce`` it refuses it. The controller's own writes, exempt users, Gateways the policy
does not govern, and updates that leave the marks as they were are never reported (a
cloud controller adding its finalizer must never be refused).
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest
from test_mutation_helpers import gateway, review_document, serving

from webhook.certs import CertificateFiles
from webhook.mutation.service import IMPERSONATION_RULE

CONTROLLER = "system:serviceaccount:envoy-gateway-system:envoy-gateway"
TENANT = "system:serviceaccount:team-b:deployer"
SHOP = gateway("shop", "team-a", class_name="eg", hostnames=["shop.example.com"])


def policy(*, rules: str = "", exempt: str = "", match: str = "{gateways: [{namespace: team-a, name: shop}]}") -> str:
    return (
        "apiVersion: routewarden.dev/v1alpha1\nkind: TenancyPolicy\nmetadata: {name: shop}\nspec:\n"
        f"  match: {match}\n" + (f"  rules: {rules}\n" if rules else "") + (f"  exempt: {exempt}\n" if exempt else "")
    )


def look_alike(namespace: str = "team-b", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "shop", "namespace": namespace, "labels": {
            "gateway.envoyproxy.io/owning-gateway-name": "shop",
            "gateway.envoyproxy.io/owning-gateway-namespace": "team-a", **labels}},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 443, "protocol": "TCP", "targetPort": 10443}]},
    }


@pytest.fixture
async def webhook(certificates: CertificateFiles) -> AsyncIterator[Any]:
    async with serving(certificates) as server:
        yield server


@pytest.mark.parametrize(
    ("rules", "allowed"),
    [("", True), ("{services/ImpersonatesGeneratedService: warn}", True),
     ("{services/ImpersonatesGeneratedService: enforce}", False)],
    ids=["default", "warn", "enforce"],
)
async def test_a_tenants_look_alike_is_warned_by_default_and_refused_with_enforce(
    webhook: Any, rules: str, allowed: bool
) -> None:
    """The look-alike naming team-a/shop, created by a tenant: a warning (default warn), or a 403 naming the
    Gateway and the writer (enforce)."""
    webhook.load(policy(rules=rules), SHOP)
    response = await webhook.answer("/validate", review_document(look_alike(), user=TENANT))
    assert response["allowed"] is allowed
    mode = "enforce" if not allowed else "warn"
    assert webhook.count(IMPERSONATION_RULE, mode) == 1
    if allowed:
        (warning,) = response["warnings"]
        assert warning.startswith(f"{IMPERSONATION_RULE}: ImpersonatesGeneratedService:")
        assert "Gateway team-a/shop" in warning and TENANT in warning
    else:
        status = response["status"]
        assert (status["code"], status["reason"]) == (403, "ImpersonatesGeneratedService")
        assert "Gateway team-a/shop" in status["message"] and CONTROLLER in status["message"]
        assert "Fix: routewarden gives a Service values only from the controller's own writes" in status["message"]


ENFORCE = "{services/ImpersonatesGeneratedService: enforce}"


@pytest.mark.parametrize(
    ("policy_text", "obj", "user"),
    [
        pytest.param(policy(rules=ENFORCE), look_alike("envoy-gateway-system"), CONTROLLER, id="the-controller"),
        pytest.param(policy(rules=ENFORCE), look_alike("team-a"), CONTROLLER, id="gateway-namespace-mode"),
        pytest.param(policy(rules=ENFORCE, exempt="{users: [platform-admin]}"), look_alike(), "platform-admin",
                     id="exempt-user"),
        pytest.param(policy(rules=ENFORCE, match="{gateways: [{namespace: team-c, name: web}]}"), look_alike(), TENANT,
                     id="gateway-not-governed"),
        pytest.param(policy(rules=ENFORCE), {**look_alike(), "spec": {"type": "ClusterIP"}}, TENANT, id="not-a-load-balancer"),
        pytest.param(policy(rules=ENFORCE), {**look_alike(), "metadata": {"name": "web", "namespace": "team-b",
                                                                         "labels": {"app": "web"}}}, TENANT,
                     id="no-marks"),
    ],
)
async def test_what_is_never_reported(webhook: Any, policy_text: str, obj: dict[str, Any], user: str) -> None:
    """The controller's own writes (in either place), exempt users, ungoverned Gateways, other Services: allowed
    silently even with enforce."""
    webhook.load(policy_text, SHOP)
    response = await webhook.answer("/validate", review_document(obj, user=user))
    assert response == {"uid": response["uid"], "allowed": True}


async def test_an_update_that_keeps_the_marks_is_never_refused(webhook: Any) -> None:
    """A cloud controller's UPDATE of a generated Service (its finalizer), with enforce: allowed without a finding,
    so a Service that exists can always be finalized and deleted."""
    webhook.load(policy(rules=ENFORCE), SHOP)
    stored = look_alike("envoy-gateway-system")
    finalized = copy.deepcopy(stored)
    finalized["metadata"]["finalizers"] = ["service.kubernetes.io/load-balancer-cleanup"]
    response = await webhook.answer("/validate", review_document(
        finalized, operation="UPDATE", old=stored, user="system:serviceaccount:kube-system:service-controller"))
    assert response == {"uid": response["uid"], "allowed": True}


async def test_a_look_alike_of_a_gateway_not_in_the_view_is_judged_by_the_policy_match(webhook: Any) -> None:
    """The named Gateway does not exist yet: a policy that names it still reports the look-alike."""
    webhook.load(policy(rules=ENFORCE))
    response = await webhook.answer("/validate", review_document(look_alike(), user=TENANT))
    assert response["allowed"] is False and "Gateway team-a/shop" in response["status"]["message"]
