"""Cloud load balancer profiles: the annotations a platform team would otherwise look up.

A profile is a named set of Service annotations (and, where the cloud's controller
selects itself by it, a ``loadBalancerClass``). Values with ``{parameter}`` are filled
from the profile's parameters; an annotation whose template names an optional parameter
that was not given is left out. Kept deliberately small: the settings each cloud needs
to pick the kind of load balancer, nothing that tunes it (add those as static
annotations in the policy).

**Create-only annotations.** Some annotations only take effect when the cloud creates
the load balancer, or must never change on a live one (a different value would
re-provision or detach it). A profile lists them in ``create_only``; the mutation sets
them on CREATE and on a type change to LoadBalancer, never changes them on UPDATE, and
warns when an UPDATE would need another value (see ``service.py``). The set is keyed
by annotation name, so the same key set as a static policy annotation is create-only
too.

The parameter formats are checked by the ServicePolicy JSON Schema
(``webhook/policy/schemas/servicepolicy.json``, one ``$defs/profileParameters`` entry
per profile; a test keeps the two in step); :func:`check_parameters` checks names and
what a schema cannot express.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from string import Formatter
from typing import Any

AWS_SCHEME = "service.beta.kubernetes.io/aws-load-balancer-scheme"
AWS_NLB_CLASS = "service.k8s.aws/nlb"  # the AWS Load Balancer Controller's class

ALIBABA = "service.beta.kubernetes.io/alibaba-cloud-loadbalancer-"
ALIBABA_NLB_CLASS = "alibabacloud.com/nlb"
TENCENT_INTERNAL_SUBNET = "service.kubernetes.io/qcloud-loadbalancer-internal-subnetid"
TENCENT_EXISTING = "service.kubernetes.io/tke-existed-lbid"
TENCENT_CHARGE_TYPE = "service.kubernetes.io/qcloud-loadbalancer-internet-charge-type"
TENCENT_MAX_BANDWIDTH = "service.kubernetes.io/qcloud-loadbalancer-internet-max-bandwidth-out"
HUAWEI_CLASS = "kubernetes.io/elb.class"
HUAWEI_ID = "kubernetes.io/elb.id"
HUAWEI_AUTOCREATE = "kubernetes.io/elb.autocreate"

Parameters = Mapping[str, Any]


class ProfileError(ValueError):
    """A profile's parameters are wrong; ``field`` is the path below ``parameters`` (or empty)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    summary: str
    annotations: Mapping[str, str] = field(default_factory=dict)
    load_balancer_class: str | None = None
    parameters: tuple[str, ...] = ()  # required
    optional: tuple[str, ...] = ()
    create_only: frozenset[str] = frozenset()  # annotation keys
    build: Callable[[Parameters], dict[str, str]] | None = None  # annotations computed from the parameters
    check: Callable[[Parameters], None] | None = None  # raises ProfileError

    def render(self, parameters: Parameters) -> dict[str, str]:
        """The annotations with ``{parameter}`` filled in (templates naming a missing optional one left out)."""
        values = {k: str(v) for k, v in parameters.items()}
        out = {
            key: template.format_map(values)
            for key, template in self.annotations.items()
            if all(name in values for _, name, _, _ in Formatter().parse(template) if name)
        }
        if self.build is not None:
            out.update(self.build(parameters))
        return out


# ----------------------------------------------------------------------------- Alibaba Cloud
def _check_zone_maps(parameters: Parameters) -> None:
    entries = str(parameters["zoneMaps"]).split(",")
    zones = [entry.partition(":")[0] for entry in entries]
    if len(set(zones)) < 2:
        raise ProfileError(f"zoneMaps names {len(set(zones))} zone; a new NLB needs at least two different zones "
                           "({zone}:{vSwitchID},{zone}:{vSwitchID})", "zoneMaps")


def _alibaba_nlb(address_type: str) -> Profile:
    return Profile(
        f"alibaba-nlb-{address_type}",
        f"Alibaba Cloud ACK, Network Load Balancer (NLB), {address_type}",
        {f"{ALIBABA}address-type": address_type, f"{ALIBABA}zone-maps": "{zoneMaps}"},
        ALIBABA_NLB_CLASS,
        parameters=("zoneMaps",),
        check=_check_zone_maps,
    )


# ----------------------------------------------------------------------------- Huawei Cloud
_BANDWIDTH = ("bandwidthName", "bandwidthSize", "bandwidthChargeMode", "eipType")


def _check_autocreate(parameters: Parameters) -> None:
    if parameters["type"] == "public":
        for name in ("bandwidthName", "bandwidthSize", "eipType"):
            if name not in parameters:
                raise ProfileError(f"an ELB of type public needs {name}", name)
        size = int(parameters["bandwidthSize"])
        if not 1 <= size <= 2000:
            raise ProfileError(f"bandwidthSize {size} is outside 1-2000 Mbit/s", "bandwidthSize")
    else:
        for name in _BANDWIDTH:
            if name in parameters:
                raise ProfileError(f"{name} applies to an ELB of type public only (this one is {parameters['type']})", name)


def _autocreate(parameters: Parameters) -> dict[str, str]:
    """``kubernetes.io/elb.autocreate``: the JSON CCE reads when it creates the ELB (fixed key order)."""
    value: dict[str, Any] = {"type": parameters["type"]}
    if "name" in parameters:
        value["name"] = parameters["name"]
    if parameters["type"] == "public":
        value.update(
            bandwidth_name=parameters["bandwidthName"],
            bandwidth_chargemode=parameters.get("bandwidthChargeMode", "bandwidth"),
            bandwidth_size=int(parameters["bandwidthSize"]),
            bandwidth_sharetype="PER",
            eip_type=parameters["eipType"],
        )
    if "availableZones" in parameters:
        value["available_zone"] = [z.strip() for z in str(parameters["availableZones"]).split(",")]
    for name, key in (("l4FlavorName", "l4_flavor_name"), ("l7FlavorName", "l7_flavor_name")):
        if name in parameters:
            value[key] = parameters[name]
    return {HUAWEI_AUTOCREATE: json.dumps(value, separators=(",", ":"))}


def _huawei_autocreate(kind: str, elb_class: str, summary: str, *, extra: tuple[str, ...] = (),
                       required: tuple[str, ...] = ()) -> Profile:
    return Profile(
        f"huawei-elb-{kind}",
        summary,
        {HUAWEI_CLASS: elb_class},
        parameters=("type", *required),
        optional=("name", *_BANDWIDTH, *extra),
        create_only=frozenset({HUAWEI_CLASS, HUAWEI_AUTOCREATE}),
        build=_autocreate,
        check=_check_autocreate,
    )


PROFILES: Mapping[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "aws-nlb-internet-facing",
            "AWS Load Balancer Controller, internet-facing Network Load Balancer",
            {AWS_SCHEME: "internet-facing"},
            AWS_NLB_CLASS,
        ),
        Profile(
            "aws-nlb-internal",
            "AWS Load Balancer Controller, internal Network Load Balancer",
            {AWS_SCHEME: "internal"},
            AWS_NLB_CLASS,
        ),
        Profile(
            "gke-internal",
            "GKE internal passthrough Network Load Balancer",
            {"networking.gke.io/load-balancer-type": "Internal"},
        ),
        Profile(
            "gke-external",
            "GKE external passthrough Network Load Balancer (backend-service based)",
            {"cloud.google.com/l4-rbs": "enabled"},
        ),
        Profile(
            "azure-internal",
            "AKS internal Azure Load Balancer",
            {"service.beta.kubernetes.io/azure-load-balancer-internal": "true"},
        ),
        Profile(
            "metallb-pool",
            "MetalLB address pool (MetalLB 0.14.9 and later; older releases read metallb.universe.tf/address-pool)",
            {"metallb.io/address-pool": "{pool}"},
            parameters=("pool",),
        ),
        Profile(
            "alibaba-clb-internet",
            "Alibaba Cloud ACK, Classic Load Balancer (CLB), internet-facing: the cloud controller's default",
        ),
        Profile(
            "alibaba-clb-intranet",
            "Alibaba Cloud ACK, Classic Load Balancer (CLB), internal-facing",
            {f"{ALIBABA}address-type": "intranet"},
        ),
        _alibaba_nlb("internet"),
        _alibaba_nlb("intranet"),
        Profile(
            "tencent-clb-internet",
            "Tencent Cloud TKE, public CLB: the cloud controller's default; optionally its billing (set at creation only)",
            {TENCENT_CHARGE_TYPE: "{chargeType}", TENCENT_MAX_BANDWIDTH: "{maxBandwidthOut}"},
            optional=("chargeType", "maxBandwidthOut"),
            create_only=frozenset({TENCENT_CHARGE_TYPE, TENCENT_MAX_BANDWIDTH}),
        ),
        Profile(
            "tencent-clb-internal",
            "Tencent Cloud TKE, private CLB in a subnet of the cluster's VPC",
            {TENCENT_INTERNAL_SUBNET: "{subnet}"},
            parameters=("subnet",),
        ),
        Profile(
            "tencent-clb-existing",
            "Tencent Cloud TKE, an existing CLB",
            {TENCENT_EXISTING: "{id}"},
            parameters=("id",),
        ),
        _huawei_autocreate("shared", "union", "Huawei Cloud CCE, shared ELB created for the Service"),
        _huawei_autocreate("dedicated", "performance", "Huawei Cloud CCE, dedicated ELB created for the Service",
                           extra=("l4FlavorName", "l7FlavorName"), required=("availableZones",)),
        Profile(
            "huawei-elb-existing",
            "Huawei Cloud CCE, an existing ELB",
            {HUAWEI_ID: "{id}", HUAWEI_CLASS: "{class}"},
            parameters=("id",),
            optional=("class",),
            create_only=frozenset({HUAWEI_ID, HUAWEI_CLASS}),
        ),
    )
}

# Annotation keys that are create-only wherever they come from (a profile or a static annotation).
CREATE_ONLY_ANNOTATIONS: frozenset[str] = frozenset(key for p in PROFILES.values() for key in p.create_only)


def check_parameters(name: str, parameters: Parameters) -> None:
    """Raise :class:`ProfileError` for an unknown profile, a missing or an unknown parameter,
    or parameters a schema cannot judge (two zones that are the same one)."""
    profile = PROFILES.get(name)
    if profile is None:
        raise ProfileError(f"unknown profile {name!r}; known: {', '.join(sorted(PROFILES))}")
    missing = sorted(set(profile.parameters) - set(parameters))
    unknown = sorted(set(parameters) - set(profile.parameters) - set(profile.optional))
    if missing:
        raise ProfileError(f"profile {name} needs parameter(s) {', '.join(missing)}", missing[0])
    if unknown:
        raise ProfileError(f"profile {name} takes no parameter(s) {', '.join(unknown)}", unknown[0])
    if profile.check is not None:
        profile.check(parameters)
