"""Cloud load balancer profiles: the annotations a platform team would otherwise look up.

A profile is a named set of Service annotations (and, where the cloud's controller
selects itself by it, a ``loadBalancerClass``). Values with ``{parameter}`` are filled
from the profile's parameters. Kept deliberately small: the settings each cloud needs
to pick the kind of load balancer, nothing that tunes it (add those as static
annotations in the policy).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

AWS_SCHEME = "service.beta.kubernetes.io/aws-load-balancer-scheme"
AWS_NLB_CLASS = "service.k8s.aws/nlb"  # the AWS Load Balancer Controller's class


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    summary: str
    annotations: Mapping[str, str] = field(default_factory=dict)
    load_balancer_class: str | None = None
    parameters: tuple[str, ...] = ()

    def render(self, parameters: Mapping[str, str]) -> dict[str, str]:
        """The annotations with ``{parameter}`` filled in."""
        return {key: value.format_map(parameters) for key, value in self.annotations.items()}


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
    )
}


def check_parameters(name: str, parameters: Mapping[str, str]) -> None:
    """Raise ValueError for an unknown profile, a missing or an unknown parameter."""
    profile = PROFILES.get(name)
    if profile is None:
        raise ValueError(f"unknown profile {name!r}; known: {', '.join(sorted(PROFILES))}")
    missing = sorted(set(profile.parameters) - set(parameters))
    unknown = sorted(set(parameters) - set(profile.parameters))
    if missing:
        raise ValueError(f"profile {name} needs parameter(s) {', '.join(missing)}")
    if unknown:
        raise ValueError(f"profile {name} takes no parameter(s) {', '.join(unknown)}")
