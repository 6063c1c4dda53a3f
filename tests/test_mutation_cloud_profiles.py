"""Alibaba Cloud, Tencent Cloud and Huawei Cloud profiles through /mutate over real HTTPS, and their schema.

For each profile, on the Service Envoy Gateway generates in its own namespace and on the
one Istio generates in the Gateway's namespace: the CREATE gets the profile's
annotations (and class); the controller's UPDATE that drops them gets them back (the
create-only ones from the stored object); an UPDATE of a Service whose create-only value
differs from the policy's keeps it and warns.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from test_mutation_helpers import REPO, gateway, policies, review_document, serving

from webhook.certs import CertificateFiles
from webhook.mutation.profiles import CREATE_ONLY_ANNOTATIONS, PROFILES
from webhook.policy.loader import PolicyLoadError, load_paths

ALIBABA = "service.beta.kubernetes.io/alibaba-cloud-loadbalancer-"
TENCENT = "service.kubernetes.io/"
ELB = "kubernetes.io/elb."
ELB_ID = "5083f225-9bf8-48fa-9c8b-67bd9693c4c0"
SHOP = gateway("shop", "team-a", class_name="any", hostnames=["shop.example.com"])

# profile as written in the policy -> (annotations, loadBalancerClass)
PROFILE_CASES: dict[str, tuple[str, dict[str, str], str | None]] = {
    "alibaba-clb-internet": ("alibaba-clb-internet", {}, None),
    "alibaba-clb-intranet": ("alibaba-clb-intranet", {f"{ALIBABA}address-type": "intranet"}, None),
    "alibaba-nlb-internet": (
        "{name: alibaba-nlb-internet, parameters: {zoneMaps: 'cn-hangzhou-k:vsw-k1,cn-hangzhou-j:vsw-j1'}}",
        {f"{ALIBABA}address-type": "internet", f"{ALIBABA}zone-maps": "cn-hangzhou-k:vsw-k1,cn-hangzhou-j:vsw-j1"},
        "alibabacloud.com/nlb"),
    "alibaba-nlb-intranet": (
        "{name: alibaba-nlb-intranet, parameters: {zoneMaps: 'cn-hangzhou-k:vsw-k1,cn-hangzhou-j:vsw-j1'}}",
        {f"{ALIBABA}address-type": "intranet", f"{ALIBABA}zone-maps": "cn-hangzhou-k:vsw-k1,cn-hangzhou-j:vsw-j1"},
        "alibabacloud.com/nlb"),
    "tencent-clb-internet": (
        "{name: tencent-clb-internet, parameters: {chargeType: TRAFFIC_POSTPAID_BY_HOUR, maxBandwidthOut: 10}}",
        {f"{TENCENT}qcloud-loadbalancer-internet-charge-type": "TRAFFIC_POSTPAID_BY_HOUR",
         f"{TENCENT}qcloud-loadbalancer-internet-max-bandwidth-out": "10"}, None),
    "tencent-clb-internal": ("{name: tencent-clb-internal, parameters: {subnet: subnet-8a2b4c6d}}",
                             {f"{TENCENT}qcloud-loadbalancer-internal-subnetid": "subnet-8a2b4c6d"}, None),
    "tencent-clb-existing": ("{name: tencent-clb-existing, parameters: {id: lb-6swt9k2m}}",
                             {f"{TENCENT}tke-existed-lbid": "lb-6swt9k2m"}, None),
    "huawei-elb-shared": (
        ("{name: huawei-elb-shared, parameters: {type: public, name: shop, bandwidthName: cce-bandwidth-shop, "
        "bandwidthSize: 5, eipType: 5_bgp}}"),
        {f"{ELB}class": "union",
         f"{ELB}autocreate": '{"type":"public","name":"shop","bandwidth_name":"cce-bandwidth-shop",'
                             '"bandwidth_chargemode":"bandwidth","bandwidth_size":5,"bandwidth_sharetype":"PER",'
                             '"eip_type":"5_bgp"}'}, None),
    "huawei-elb-dedicated": (
        ("{name: huawei-elb-dedicated, parameters: {type: inner, availableZones: 'cn-north-4a,cn-north-4b', "
        "l4FlavorName: L4_flavor.elb.s1.small}}"),
        {f"{ELB}class": "performance",
         f"{ELB}autocreate": '{"type":"inner","available_zone":["cn-north-4a","cn-north-4b"],'
                             '"l4_flavor_name":"L4_flavor.elb.s1.small"}'}, None),
    "huawei-elb-existing": (f"{{name: huawei-elb-existing, parameters: {{id: {ELB_ID}, class: performance}}}}",
                            {f"{ELB}id": ELB_ID, f"{ELB}class": "performance"}, None),
}
CLOUD_PROFILES = sorted(PROFILE_CASES)


def service(namespace: str, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Cluster",
                     "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 10443}]}}


GENERATED = {
    "envoy-gateway": (service("envoy-gateway-system", "envoy-team-a-shop-1a2b3c4d", {
        "app.kubernetes.io/managed-by": "envoy-gateway", "gateway.envoyproxy.io/owning-gateway-name": "shop",
        "gateway.envoyproxy.io/owning-gateway-namespace": "team-a"}),
        "system:serviceaccount:envoy-gateway-system:envoy-gateway"),
    "istio": (service("team-a", "shop-istio", {"gateway.istio.io/managed": "istio.io-gateway-controller",
                                                "gateway.networking.k8s.io/gateway-name": "shop"}),
              "system:serviceaccount:istio-system:istiod"),
}


def policy_with(profile: str) -> str:
    return ("apiVersion: routewarden.dev/v1alpha1\nkind: ServicePolicy\nmetadata: {name: cloud}\n"
            f"spec:\n  service:\n    profiles: [{profile}]\n")


@pytest.fixture
async def webhook(certificates: CertificateFiles) -> AsyncIterator[Any]:
    async with serving(certificates) as server:
        yield server


async def created(webhook: Any, profile: str, implementation: str) -> dict[str, Any]:
    webhook.load(policy_with(PROFILE_CASES[profile][0]), SHOP)
    obj, controller = GENERATED[implementation]
    _, stored = await webhook.mutate(review_document(obj, user=controller))
    return stored


@pytest.mark.parametrize("implementation", sorted(GENERATED))
@pytest.mark.parametrize("profile", CLOUD_PROFILES)
async def test_create_gets_the_profiles_annotations_and_class(webhook: Any, profile: str, implementation: str) -> None:
    """The controller's CREATE: exactly the profile's annotations, and its loadBalancerClass if it has one."""
    _, annotations, load_balancer_class = PROFILE_CASES[profile]
    stored = await created(webhook, profile, implementation)
    assert stored["metadata"].get("annotations", {}) == annotations
    assert stored["spec"].get("loadBalancerClass") == load_balancer_class


@pytest.mark.parametrize("implementation", sorted(GENERATED))
@pytest.mark.parametrize("profile", CLOUD_PROFILES)
async def test_a_controller_update_that_drops_them_gets_them_back(webhook: Any, profile: str, implementation: str) -> None:
    """The controller rewrites its Service without the annotations and class: all come back, without a warning
    (the create-only ones and the class from the stored object, as they are on the live load balancer)."""
    stored = await created(webhook, profile, implementation)
    rewrite = copy.deepcopy(stored)
    rewrite["metadata"].pop("annotations", None)
    rewrite["spec"].pop("loadBalancerClass", None)
    response, again = await webhook.mutate(review_document(rewrite, operation="UPDATE", old=stored,
                                                           user=GENERATED[implementation][1]))
    assert again == stored
    assert "warnings" not in response


def changed_case(profile: str) -> tuple[str, str] | None:
    """(what differs, its stored value) for a profile with a create-only annotation or a class."""
    _, annotations, load_balancer_class = PROFILE_CASES[profile]
    create_only = sorted(set(annotations) & CREATE_ONLY_ANNOTATIONS)
    if create_only:
        return create_only[0], "set-when-it-was-created"
    if load_balancer_class:
        return "loadBalancerClass", "example.com/other"
    return None


WITH_CREATE_ONLY = [p for p in CLOUD_PROFILES if changed_case(p) is not None]


@pytest.mark.parametrize("implementation", sorted(GENERATED))
@pytest.mark.parametrize("profile", WITH_CREATE_ONLY)
async def test_an_update_where_a_create_only_value_differs_keeps_it_and_warns(
    webhook: Any, profile: str, implementation: str
) -> None:
    """The Service was created with another value (another policy, by hand): the UPDATE leaves it, with a warning
    saying it is set only at creation; the other annotations are still set."""
    key, value = changed_case(profile)
    stored = await created(webhook, profile, implementation)
    if key == "loadBalancerClass":
        stored["spec"][key] = value
    else:
        stored["metadata"]["annotations"][key] = value
    response, again = await webhook.mutate(review_document(copy.deepcopy(stored), operation="UPDATE", old=stored,
                                                           user=GENERATED[implementation][1]))
    assert "patch" not in response and again == stored
    (warning,) = response["warnings"]
    assert repr(value) in warning and "only at creation" in warning and "recreates it" in warning


async def test_a_type_change_to_load_balancer_sets_the_create_only_values(webhook: Any) -> None:
    """Istio switches its Service to LoadBalancer on UPDATE: the load balancer is created now, so the create-only
    annotations and the class are set as on a CREATE; the same UPDATE of a Service that already was a load
    balancer sets neither."""
    webhook.load(policy_with(PROFILE_CASES["huawei-elb-shared"][0]) + "    loadBalancerClass: example.com/lb\n", SHOP)
    obj, controller = GENERATED["istio"]
    cluster_ip = copy.deepcopy(obj)
    cluster_ip["spec"]["type"] = "ClusterIP"
    _, stored = await webhook.mutate(review_document(obj, operation="UPDATE", old=cluster_ip, user=controller))
    assert stored["metadata"]["annotations"] == PROFILE_CASES["huawei-elb-shared"][1]
    assert stored["spec"]["loadBalancerClass"] == "example.com/lb"
    response, _ = await webhook.mutate(review_document(obj, operation="UPDATE", old=obj, user=controller))
    assert "patch" not in response and len(response["warnings"]) == 3  # elb.class, elb.autocreate, the class


# ----------------------------------------------------------------------------- schema
def document(profile: str) -> str:
    return policy_with(profile)


@pytest.mark.parametrize(
    ("profile", "field", "message"),
    [
        ("{name: alibaba-nlb-internet, parameters: {zoneMaps: 'cn-hangzhou-k:vsw-k1'}}",
         "spec.service.profiles[0].parameters.zoneMaps", "is not {zone}:{vSwitchID} for at least two zones"),
        ("{name: alibaba-nlb-intranet, parameters: {zoneMaps: 'cn-hangzhou-k:vsw-k1,cn-hangzhou-k:vsw-k2'}}",
         "spec.service.profiles[0].parameters.zoneMaps", "a new NLB needs at least two different zones"),
        ("alibaba-nlb-internet", "spec.service.profiles[0].parameters.zoneMaps", "needs parameter(s) zoneMaps"),
        ("{name: huawei-elb-shared, parameters: {type: private}}",
         "spec.service.profiles[0].parameters.type", "'private' is not one of ['public', 'inner']"),
        ("{name: huawei-elb-shared, parameters: {type: public}}",
         "spec.service.profiles[0].parameters", "'bandwidthName' is a required property"),
        ("{name: huawei-elb-shared, parameters: {type: inner, bandwidthSize: 5}}",
         "spec.service.profiles[0].parameters.bandwidthSize", "applies to an ELB of type public only"),
        ("{name: huawei-elb-shared, parameters: {type: public, bandwidthName: b, bandwidthSize: 5000, eipType: 5_bgp}}",
         "spec.service.profiles[0].parameters.bandwidthSize", "5000 is greater than the maximum of 2000"),
        ("{name: huawei-elb-dedicated, parameters: {type: inner}}",
         "spec.service.profiles[0].parameters", "'availableZones' is a required property"),
        ("{name: huawei-elb-existing, parameters: {id: my-elb}}",
         "spec.service.profiles[0].parameters.id", "'my-elb' is not an ELB ID (a UUID)"),
        ("{name: tencent-clb-internal, parameters: {subnet: '10.0.0.0/24'}}",
         "spec.service.profiles[0].parameters.subnet", "is not a subnet ID such as subnet-xxxxxxxx"),
        ("{name: tencent-clb-existing, parameters: {}}",
         "spec.service.profiles[0].parameters", "'id' is a required property"),
        ("{name: tencent-clb-internet, parameters: {chargeType: BANDWIDTH_PREPAID, maxBandwidthOut: 10}}",
         "spec.service.profiles[0].parameters.chargeType", "'BANDWIDTH_PREPAID' is not one of"),
        ("{name: tencent-clb-internet, parameters: {chargeType: TRAFFIC_POSTPAID_BY_HOUR}}",
         "spec.service.profiles[0].parameters", "'maxBandwidthOut' is a dependency of 'chargeType'"),
        ("{name: alibaba-clb-intranet, parameters: {zoneMaps: 'a:vsw-1,b:vsw-2'}}",
         "spec.service.profiles[0].parameters", "Additional properties are not allowed ('zoneMaps' was unexpected)"),
    ],
)
def test_a_missing_or_malformed_parameter_is_refused_with_its_file_and_field(
    tmp_path: Path, profile: str, field: str, message: str
) -> None:
    """The loader names the file, the document and the field of every wrong profile parameter."""
    path = tmp_path / "cloud.yaml"
    path.write_text(document(profile))
    with pytest.raises(PolicyLoadError) as caught:
        load_paths([path])
    errors = caught.value.errors
    assert {(e.file, e.document) for e in errors} == {(str(path), 0)}
    assert (field, True) in {(e.field, message in e.message) for e in errors}, errors


def test_every_profile_parameter_is_in_the_schema_and_the_other_way_round() -> None:
    """Each profile's parameters (required and optional) are exactly those its schema entry allows and requires."""
    schema = json.loads((REPO / "webhook" / "policy" / "schemas" / "servicepolicy.json").read_text())
    entries = schema["$defs"]["profileParameters"]
    for name, profile in PROFILES.items():
        entry = entries.get(name, {"properties": {}})
        assert set(entry["properties"]) == set(profile.parameters) | set(profile.optional), name
        assert set(entry.get("required", ())) == set(profile.parameters), name


@pytest.mark.parametrize("profile", CLOUD_PROFILES)
def test_each_case_above_is_a_valid_policy(profile: str) -> None:
    """The parameters used in the /mutate tests pass the schema (so those tests test the profiles, not errors)."""
    assert policies(policy_with(PROFILE_CASES[profile][0])).services
