"""Only the controller's own Services: trust the writer, not the labels (through /mutate over real HTTPS).

A tenant who may create a Service can write any controller's labels. For Envoy Gateway
(Services in its own namespace, or in the Gateway's namespace in Gateway Namespace
Mode), Istio, Cilium and Contour: the controller's CREATE and UPDATE get the Gateway's
hostname, the same Service written by a tenant gets nothing and a warning that names the
Gateway it imitates (and is counted), and a look-alike in a tenant namespace gets
nothing.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
import yaml
from test_mutation_helpers import REPO, gateway, review_document, serving, state_of

from webhook.certs import CertificateFiles
from webhook.mutation import plan_service
from webhook.mutation.service import HOSTNAME_RECORD, IMPERSONATION_RULE
from webhook.policy.loader import load_documents

HOSTNAME = "external-dns.alpha.kubernetes.io/hostname"
POLICY = """\
apiVersion: routewarden.dev/v1alpha1
kind: ServicePolicy
metadata: {name: shop}
spec:
  service:
    annotations: {example.com/owner: platform}
    externalDNS: {sources: [listeners]}
"""
TENANT = "system:serviceaccount:team-b:deployer"
SHOP = gateway("shop", "team-a", class_name="any", hostnames=["shop.example.com"])
OWNER = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "name": "shop",
         "uid": SHOP["metadata"]["uid"], "controller": True}
ENVOY_LABELS = {"app.kubernetes.io/managed-by": "envoy-gateway", "app.kubernetes.io/name": "envoy",
                "gateway.envoyproxy.io/owning-gateway-name": "shop",
                "gateway.envoyproxy.io/owning-gateway-namespace": "team-a"}


def service(name: str, namespace: str, labels: dict[str, str], owners: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels}
    if owners:
        metadata["ownerReferences"] = owners
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata,
            "spec": {"type": "LoadBalancer", "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80}],
                     "externalTrafficPolicy": "Cluster", "sessionAffinity": "None"}}


# setup -> (the Service its controller generates for Gateway team-a/shop, the controller's user)
GENERATED = {
    "envoy-gateway": (service("envoy-team-a-shop-1a2b3c4d", "envoy-gateway-system", ENVOY_LABELS),
                      "system:serviceaccount:envoy-gateway-system:envoy-gateway"),
    "envoy-gateway-namespace-mode": (service("shop", "team-a", ENVOY_LABELS, [{**OWNER, "controller": None}]),
                                     "system:serviceaccount:envoy-gateway-system:envoy-gateway"),
    "istio": (service("shop-istio", "team-a", {"gateway.istio.io/managed": "istio.io-gateway-controller",
                                               "gateway.networking.k8s.io/gateway-name": "shop"},
                      [{k: v for k, v in OWNER.items() if k != "controller"}]),
              "system:serviceaccount:istio-system:istiod"),
    "cilium": (service("cilium-gateway-shop", "team-a", {"gateway.networking.k8s.io/gateway-name": "shop",
                                                         "io.cilium.gateway/owning-gateway": "shop"}, [OWNER]),
               "system:serviceaccount:kube-system:cilium-operator"),
    "contour": (service("envoy-shop", "team-a", {"projectcontour.io/owning-gateway-name": "shop",
                                                 "gateway.networking.k8s.io/gateway-name": "shop"}, [OWNER]),
                "system:serviceaccount:projectcontour:contour-gateway-provisioner"),
}
SETUPS = sorted(GENERATED)


@pytest.fixture
async def webhook(certificates: CertificateFiles) -> AsyncIterator[Any]:
    async with serving(certificates) as server:
        server.load(POLICY, SHOP, gateway("shop", "team-b", class_name="any", hostnames=["b.example.com"]))
        yield server


def in_namespace(obj: dict[str, Any], namespace: str) -> dict[str, Any]:
    moved = copy.deepcopy(obj)
    moved["metadata"]["namespace"] = namespace
    return moved


@pytest.mark.parametrize("setup", SETUPS)
async def test_the_controllers_own_create_and_update_get_the_gateways_hostname(webhook: Any, setup: str) -> None:
    """The controller's CREATE is annotated; its rewrite that drops the annotations gets them back."""
    obj, controller = GENERATED[setup]
    response, stored = await webhook.mutate(review_document(obj, user=controller))
    assert stored["metadata"]["annotations"][HOSTNAME] == "shop.example.com"
    assert stored["metadata"]["annotations"]["example.com/owner"] == "platform"
    assert "warnings" not in response
    _, again = await webhook.mutate(review_document(obj, operation="UPDATE", old=stored, user=controller))
    assert again["metadata"]["annotations"] == stored["metadata"]["annotations"]


@pytest.mark.parametrize("setup", SETUPS)
async def test_the_same_service_written_by_a_tenant_gets_nothing_and_a_warning_naming_the_gateway(
    webhook: Any, setup: str
) -> None:
    """A tenant's CREATE of the controller's Service: no patch, a warning naming team-a/shop and the writer, counted."""
    obj, controller = GENERATED[setup]
    before = webhook.count(IMPERSONATION_RULE, "warn")
    response, _ = await webhook.mutate(review_document(obj, user=TENANT))
    assert "patch" not in response
    (warning,) = response["warnings"]
    assert warning.startswith(f"{IMPERSONATION_RULE}: ImpersonatesGeneratedService:")
    assert "Gateway team-a/shop" in warning and TENANT in warning and controller in warning
    assert webhook.count(IMPERSONATION_RULE, "warn") == before + 1


@pytest.mark.parametrize("setup", SETUPS)
async def test_a_look_alike_in_a_tenant_namespace_gets_nothing(webhook: Any, setup: str) -> None:
    """The same Service created by a tenant in its own namespace, team-b: no patch, whatever Gateway it then names."""
    obj, _ = GENERATED[setup]
    look_alike = in_namespace(obj, "team-b")
    response, _ = await webhook.mutate(review_document(look_alike, user=TENANT))
    assert "patch" not in response
    named = "team-a/shop" if setup.startswith("envoy-gateway") else "team-b/shop"
    assert f"Gateway {named}" in response["warnings"][0]


@pytest.mark.parametrize("setup", ["envoy-gateway", "envoy-gateway-namespace-mode"])
async def test_envoy_gateways_own_identity_outside_its_namespaces_gets_nothing(webhook: Any, setup: str) -> None:
    """Envoy Gateway's labels name another namespace's Gateway: even its own identity is trusted only where it
    puts Services (its namespace, or the Gateway's)."""
    obj, controller = GENERATED[setup]
    response, _ = await webhook.mutate(review_document(in_namespace(obj, "team-b"), user=controller))
    assert "patch" not in response
    assert "does not put Services for Gateway team-a/shop" in response["warnings"][0]


async def test_an_update_by_someone_else_of_the_controllers_service_is_left_alone_and_not_counted(webhook: Any) -> None:
    """A cloud controller adding its finalizer to the Service: its marks did not change, so no finding and no
    patch, only a note that routewarden annotates the controller's writes."""
    obj, controller = GENERATED["cilium"]
    _, stored = await webhook.mutate(review_document(obj, user=controller))
    finalized = copy.deepcopy(stored)
    finalized["metadata"]["finalizers"] = ["service.kubernetes.io/load-balancer-cleanup"]
    del finalized["metadata"]["annotations"][HOSTNAME]
    before = webhook.count(IMPERSONATION_RULE, "warn")
    response, after = await webhook.mutate(review_document(
        finalized, operation="UPDATE", old=stored, user="system:serviceaccount:kube-system:service-controller"))
    assert "patch" not in response and HOSTNAME not in after["metadata"]["annotations"]
    assert response["warnings"] == [
        ("routewarden did not annotate Service team-a/cilium-gateway-shop for Gateway team-a/shop: written by "
        "system:serviceaccount:kube-system:service-controller, not by cilium "
        "(system:serviceaccount:kube-system:cilium-operator, default)")]
    assert webhook.count(IMPERSONATION_RULE, "warn") == before


async def test_the_reconcilers_own_apply_of_the_controllers_service_draws_no_warning(webhook: Any) -> None:
    """The background reconciler's server-side apply (field manager routewarden, its ServiceAccount) of a Service
    the controller generated: it already carries the plan, so no patch and no "did not annotate" note."""
    obj, controller = GENERATED["cilium"]
    _, stored = await webhook.mutate(review_document(obj, user=controller))
    applied = copy.deepcopy(stored)
    del applied["metadata"]["annotations"][HOSTNAME]
    document = review_document(applied, operation="UPDATE", old=stored,
                               user="system:serviceaccount:routewarden:routewarden")
    document["request"]["options"]["fieldManager"] = "routewarden"
    response, after = await webhook.mutate(document)
    assert "patch" not in response and "warnings" not in response and HOSTNAME not in after["metadata"]["annotations"]
    document["request"]["options"]["fieldManager"] = "kubectl-edit"  # anyone else still hears why
    response, _ = await webhook.mutate(document)
    assert "patch" not in response and response["warnings"][0].startswith("routewarden did not annotate")


async def test_labels_added_by_a_tenant_on_update_are_an_impersonation(webhook: Any) -> None:
    """A tenant's own LoadBalancer Service that gains Envoy Gateway's labels on UPDATE is reported like a CREATE."""
    plain = service("mine", "team-b", {"app": "mine"})
    labelled = service("mine", "team-b", {"app": "mine", **ENVOY_LABELS})
    response, _ = await webhook.mutate(review_document(labelled, operation="UPDATE", old=plain, user=TENANT))
    assert "patch" not in response and "ImpersonatesGeneratedService" in response["warnings"][0]


MULTI_TENANT = """\
apiVersion: routewarden.dev/v1alpha1
kind: ServicePolicy
metadata: {name: team-a}
spec:
  match: {gatewayClassNames: [eg-team-a]}
  controllers:
    envoy-gateway:
      serviceAccounts: [team-a-eg/envoy-gateway]
      serviceNamespaces: [team-a-eg]
      gatewayNamespace: false
  service:
    externalDNS: {sources: [listeners]}
"""


@pytest.mark.parametrize(
    ("writer", "namespace", "patched"),
    [
        ("system:serviceaccount:team-a-eg:envoy-gateway", "team-a-eg", True),
        ("system:serviceaccount:team-a-eg:envoy-gateway", "team-a", False),  # gatewayNamespace: false
        ("system:serviceaccount:envoy-gateway-system:envoy-gateway", "envoy-gateway-system", False),  # replaced
        ("system:serviceaccount:team-b-eg:envoy-gateway", "team-b-eg", False),  # another tenant's controller
    ],
)
async def test_a_policy_names_each_tenants_own_controller(webhook: Any, writer: str, namespace: str, patched: bool) -> None:
    """Envoy Gateway with one controller per tenant: spec.controllers replaces the default identity and places
    for the Gateways the policy matches, so only team-a's controller, in its namespace, is trusted."""
    webhook.load(MULTI_TENANT, gateway("shop", "team-a", class_name="eg-team-a", hostnames=["shop.example.com"]))
    obj = service("envoy-team-a-shop-1a2b3c4d", namespace, ENVOY_LABELS)
    response, stored = await webhook.mutate(review_document(obj, user=writer))
    assert ("patch" in response) is patched
    assert (stored["metadata"].get("annotations", {}).get(HOSTNAME) == "shop.example.com") is patched


@pytest.mark.parametrize(
    ("owners", "patched"),
    [
        ([OWNER], True),
        ([{**OWNER, "controller": False}], False),
        ([{**OWNER, "uid": "another-gateway-of-that-name"}], False),
        (None, False),
    ],
)
async def test_a_controller_without_a_known_identity_is_trusted_through_the_gateways_ownership(
    webhook: Any, owners: list[dict[str, Any]] | None, patched: bool
) -> None:
    """A controller recognised only by the Gateway API label: its Service needs an ownerReference to the Gateway
    with controller: true and the Gateway's uid, in the Gateway's namespace."""
    obj = service("shop-lb", "team-a", {"gateway.networking.k8s.io/gateway-name": "shop"}, owners)
    response, _ = await webhook.mutate(review_document(obj, user="system:serviceaccount:unknown:controller"))
    assert ("patch" in response) is patched


@pytest.mark.parametrize(
    ("setup", "namespace", "trusted"),
    [
        ("envoy-gateway", "envoy-gateway-system", True),
        ("envoy-gateway", "team-a", True),  # Gateway Namespace Mode
        ("envoy-gateway", "team-b", False),
        ("cilium", "team-a", True),
        ("istio", "team-a", True),
    ],
)
def test_without_a_user_a_service_is_recognised_only_where_its_controller_creates_services(
    setup: str, namespace: str, trusted: bool
) -> None:
    """plan_service without a writer (check, a reconciler): the namespace decides, and the plan says so."""
    obj = in_namespace(GENERATED[setup][0], namespace)
    plan = plan_service(obj, user=None, policies=load_documents([("p.yaml", POLICY)]), state=state_of(SHOP),
                        operation="CREATE")
    assert plan.trusted is trusted
    assert plan.trust.startswith("without a request user")
    assert (plan.annotations.get(HOSTNAME) == "shop.example.com") is trusted
    if trusted:
        assert plan.warnings == () and "at admission only writes by" in plan.trust
        assert plan.annotations[HOSTNAME_RECORD] == f"{HOSTNAME}=shop.example.com"
    else:
        assert plan.finding is not None and "Gateway team-a/shop" in plan.finding.message


def check(tmp_path: Any, *manifests: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``routewarden check -o json`` of the manifests with POLICY: the results by kind and namespace."""
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "services.yaml").write_text(POLICY)
    (tmp_path / "manifests.yaml").write_text(yaml.safe_dump_all(manifests))
    proc = subprocess.run([sys.executable, "-m", "webhook", "check", "--policies", str(tmp_path / "policies"),
                           str(tmp_path / "manifests.yaml"), "-o", "json"],
                          cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {f"{r['kind']}/{r['namespace']}": r for r in json.loads(proc.stdout)["results"]}


def test_check_reports_two_services_given_values_for_one_gateway(tmp_path: Any) -> None:
    """Offline, Envoy Gateway's Service in its namespace and one in the Gateway's namespace (both places it uses)
    both name team-a/shop: the writer is unknown, so both are reported, naming each other."""
    results = check(tmp_path, SHOP, GENERATED["envoy-gateway"][0], GENERATED["envoy-gateway-namespace-mode"][0])
    for where in ("Service/envoy-gateway-system", "Service/team-a"):
        notes = [w for w in results[where]["warnings"] if "all resolve to Gateway team-a/shop" in w]
        assert notes == [("Services envoy-gateway-system/envoy-team-a-shop-1a2b3c4d, team-a/shop all resolve to "
                         "Gateway team-a/shop: without a request user routewarden cannot tell which one its controller "
                         "wrote, so each gets the Gateway's values here; at admission only the controller's own write "
                         "gets them")], results[where]["warnings"]


def test_check_recognises_generated_services_only_where_their_controller_creates_them_and_says_so(tmp_path: Any) -> None:
    """``routewarden check`` has no request user: the Envoy Gateway Service in envoy-gateway-system is patched with
    a note (not a warning) that says why it was recognised; the same Service in a tenant namespace is not, and is reported."""
    results = check(tmp_path, SHOP, GENERATED["envoy-gateway"][0], in_namespace(GENERATED["envoy-gateway"][0], "team-b"))
    generated, look_alike = results["Service/envoy-gateway-system"], results["Service/team-b"]
    (patch,) = generated["patch"]
    assert patch["path"] == "/metadata/annotations" and patch["value"][HOSTNAME] == "shop.example.com"
    (note,) = generated["info"]
    assert note.startswith("without a request user, recognised as envoy-gateway's Service because it is in namespace "
                           "envoy-gateway-system")
    assert generated["warnings"] == [] and generated["result"] == "allow"
    assert look_alike["patch"] == [] and look_alike["result"] == "warn"
    (warning,) = look_alike["warnings"]
    assert "ImpersonatesGeneratedService" in warning and "Gateway team-a/shop" in warning
    assert "not in namespace team-b" in warning
