"""ServicePolicy: what routewarden adds to generated Services and to Gateways.

One document kind covers both, because both are chosen the same way (by the Gateway:
its class, name, namespace or labels) and are written by the same platform team. The
``service`` section shapes the LoadBalancer Service a controller generates for a
matching Gateway; the ``gateway`` section fills in defaults on the Gateway itself.

``spec.match`` criteria are ANDed (each given criterion must hold; within one, any
entry is enough). That differs on purpose from TenancyPolicy's ``match`` (any
criterion): a policy that writes cloud load balancer settings must be narrowable, and
with "any" every criterion added would widen it.

``spec.controllers`` says who each gateway controller is and where it puts its
Services, for the Gateways the policy matches (``trust.py``): only the controller's own
writes get the ``service`` settings.

Several matching policies are applied in order of ``spec.priority`` (lowest first,
default 0), then of ``metadata.name``; a later policy wins for every setting it gives.
Within one policy the annotations are layered: profiles, then the Gateway's
``spec.infrastructure.annotations`` (when propagated), then ``service.annotations``,
then the external-dns settings.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import gatewayapi as gw
from ..policy.model import NamespaceSet
from .profiles import CREATE_ONLY_ANNOTATIONS, PROFILES, ProfileError, check_parameters

LEGACY_EXTERNAL_DNS_PREFIX = "external-dns.alpha.kubernetes.io/"
HOSTNAME_SOURCES = ("listeners", "routes", "template")
TEMPLATE_FIELDS = frozenset({"gateway", "namespace", "class"})


@dataclass(frozen=True, slots=True)
class PolicyMatch:
    """Which Gateways (and so which generated Services) a policy applies to. ANDed."""

    class_names: frozenset[str] | None = None
    gateways: frozenset[tuple[str | None, str]] | None = None
    namespaces: NamespaceSet | None = None
    gateway_labels: gw.LabelSelector | None = None

    def matches(self, gateway: gw.Gateway, namespace_labels: Mapping[str, str] | None) -> bool:
        if self.class_names is not None and gateway.class_name not in self.class_names:
            return False
        if self.gateways is not None and not (
            (gateway.namespace, gateway.name) in self.gateways or (None, gateway.name) in self.gateways
        ):
            return False
        if self.namespaces is not None and not self.namespaces.contains(gateway.namespace, namespace_labels):
            return False  # unknown labels (None) do not match: never mutate on a guess
        return not (self.gateway_labels is not None and not self.gateway_labels.matches(gateway.meta.labels))


@dataclass(frozen=True, slots=True)
class ExternalDNS:
    prefix: str = LEGACY_EXTERNAL_DNS_PREFIX
    sources: tuple[str, ...] = ("listeners",)
    template: str = ""
    wildcards: str = "keep"  # keep | drop
    ttl: str | None = None

    @property
    def hostname_key(self) -> str:
        return f"{self.prefix}hostname"


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    profiles: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    load_balancer_class: str | None = None
    external_traffic_policy: str | None = None
    external_dns: ExternalDNS | None = None
    propagate_infrastructure: bool = False
    keep_others: bool = False  # conflicts: keep (a value someone else set wins)
    # Background reconciliation: take a value another field manager owns (server-side
    # apply with force) instead of reporting the conflict. None: not given by this policy.
    force_conflicts: bool | None = None


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    issuer: tuple[str, str] | None = None  # (annotation key, issuer name)
    default_allowed_routes: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ControllerOverride:
    """``spec.controllers.<implementation>``: who that controller is and where it puts its
    Services, for the Gateways this policy matches. A field left out keeps the default;
    the identity (``users``, ``serviceAccounts``) and the places (``serviceNamespaces``,
    ``gatewayNamespace``) are each replaced as a whole when any of their fields is given."""

    users: frozenset[str] | None = None
    service_accounts: frozenset[str] | None = None  # "namespace/name"
    service_namespaces: frozenset[str] | None = None
    gateway_namespace: bool | None = None

    @property
    def sets_identity(self) -> bool:
        return self.users is not None or self.service_accounts is not None

    @property
    def sets_places(self) -> bool:
        return self.service_namespaces is not None or self.gateway_namespace is not None


@dataclass(frozen=True, slots=True)
class ServicePolicy:
    name: str
    source: str = ""
    priority: int = 0
    match: PolicyMatch = field(default_factory=PolicyMatch)
    service: ServiceSettings | None = None
    gateway: GatewaySettings | None = None
    controllers: Mapping[str, ControllerOverride] = field(default_factory=dict)

    @property
    def order(self) -> tuple[int, str]:
        return (self.priority, self.name)

    @classmethod
    def from_document(cls, doc: Mapping[str, Any], *, source: str = "") -> ServicePolicy:
        spec = doc.get("spec") or {}
        return cls(
            name=doc["metadata"]["name"],
            source=source,
            priority=int(spec.get("priority", 0)),
            match=_match(spec.get("match") or {}),
            service=_service(spec["service"]) if "service" in spec else None,
            gateway=_gateway(spec["gateway"]) if "gateway" in spec else None,
            controllers={k: _controller(v) for k, v in (spec.get("controllers") or {}).items()},
        )


def _optional_set(value: Any) -> frozenset[str] | None:
    return frozenset(value) if value is not None else None


def _controller(c: Mapping[str, Any]) -> ControllerOverride:
    return ControllerOverride(
        users=_optional_set(c.get("users")),
        service_accounts=_optional_set(c.get("serviceAccounts")),
        service_namespaces=_optional_set(c.get("serviceNamespaces")),
        gateway_namespace=c.get("gatewayNamespace"),
    )


def _match(m: Mapping[str, Any]) -> PolicyMatch:
    selector = m.get("gatewayLabels")
    return PolicyMatch(
        class_names=frozenset(m["gatewayClassNames"]) if "gatewayClassNames" in m else None,
        gateways=frozenset((g.get("namespace"), g["name"]) for g in m["gateways"]) if "gateways" in m else None,
        namespaces=NamespaceSet.from_dict(m.get("namespaces")),
        gateway_labels=gw.LabelSelector.from_dict(selector, "spec.match.gatewayLabels") if selector is not None else None,
    )


def _profiles(items: list[Any]) -> tuple[tuple[str, Mapping[str, Any]], ...]:
    out = []
    for i, item in enumerate(items):
        name, parameters = (item, {}) if isinstance(item, str) else (item["name"], dict(item.get("parameters") or {}))
        try:
            check_parameters(name, parameters)
        except ProfileError as exc:
            where = f"spec.service.profiles[{i}]"
            exc.field = f"{where}.parameters.{exc.field}" if exc.field else where
            raise
        out.append((name, parameters))
    return tuple(out)


def _external_dns(e: Mapping[str, Any]) -> ExternalDNS:
    sources = tuple(dict.fromkeys(e.get("sources") or ("listeners",)))
    template = e.get("template", "")
    if "template" in sources and not template:
        raise ValueError("externalDNS.sources lists template but externalDNS.template is empty")
    fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    if fields - TEMPLATE_FIELDS:
        raise ValueError(
            f"externalDNS.template uses {', '.join(sorted(fields - TEMPLATE_FIELDS))}; "
            f"known: {', '.join('{' + f + '}' for f in sorted(TEMPLATE_FIELDS))}"
        )
    ttl = e.get("ttl")
    return ExternalDNS(
        prefix=e.get("prefix", LEGACY_EXTERNAL_DNS_PREFIX),
        sources=sources,
        template=template,
        wildcards=e.get("wildcards", "keep"),
        ttl=str(ttl) if ttl is not None else None,
    )


def _service(s: Mapping[str, Any]) -> ServiceSettings:
    return ServiceSettings(
        profiles=_profiles(s.get("profiles") or []),
        annotations=dict(s.get("annotations") or {}),
        labels=dict(s.get("labels") or {}),
        load_balancer_class=s.get("loadBalancerClass"),
        external_traffic_policy=s.get("externalTrafficPolicy"),
        external_dns=_external_dns(s["externalDNS"]) if "externalDNS" in s else None,
        propagate_infrastructure=bool(s.get("propagateInfrastructure", False)),
        keep_others=s.get("conflicts", "overwrite") == "keep",
        force_conflicts=s.get("forceConflicts"),
    )


def _gateway(g: Mapping[str, Any]) -> GatewaySettings:
    cm = g.get("certManager") or {}
    issuer = None
    if "clusterIssuer" in cm:
        issuer = ("cert-manager.io/cluster-issuer", cm["clusterIssuer"])
    elif "issuer" in cm:
        issuer = ("cert-manager.io/issuer", cm["issuer"])
    return GatewaySettings(issuer=issuer, default_allowed_routes=g.get("defaultAllowedRoutes"))


# ----------------------------------------------------------------------------- selection
def matching(policies: tuple[Any, ...], gateway: gw.Gateway, namespace_labels: Mapping[str, str] | None) -> list[ServicePolicy]:
    """The policies that apply to ``gateway``, in the order they are applied."""
    found = [p for p in policies if isinstance(p, ServicePolicy) and p.match.matches(gateway, namespace_labels)]
    return sorted(found, key=lambda p: p.order)


@dataclass(frozen=True, slots=True)
class DesiredService:
    """Everything the matching policies ask of one Service, merged."""

    annotations: Mapping[str, str]
    keep_others: frozenset[str]  # annotation keys whose policy said conflicts: keep
    labels: Mapping[str, str]
    load_balancer_class: str | None
    external_traffic_policy: str | None
    external_dns: ExternalDNS | None
    policies: tuple[str, ...]

    @property
    def create_only(self) -> frozenset[str]:
        """The annotation keys that are set at creation only (see ``profiles.py``)."""
        return frozenset(self.annotations) & CREATE_ONLY_ANNOTATIONS


def desired_service(policies: list[ServicePolicy], gateway: gw.Gateway) -> DesiredService:
    """Fold the matching policies' ``service`` sections, later winning (see the module docstring)."""
    annotations: dict[str, str] = {}
    keep: set[str] = set()
    labels: dict[str, str] = {}
    lb_class = etp = None
    external_dns = None
    names = []
    for policy in policies:
        s = policy.service
        if s is None:
            continue
        names.append(policy.name)
        layer: dict[str, str] = {}
        for name, parameters in s.profiles:
            profile = PROFILES[name]
            layer.update(profile.render(parameters))
            lb_class = profile.load_balancer_class or lb_class
        if s.propagate_infrastructure:
            layer.update(gateway.infrastructure_annotations)
            labels.update(gateway.infrastructure_labels)
        layer.update(s.annotations)
        if s.external_dns is not None and s.external_dns.ttl is not None:
            layer[f"{s.external_dns.prefix}ttl"] = s.external_dns.ttl
        annotations.update(layer)
        keep = (keep - set(layer)) | (set(layer) if s.keep_others else set())
        labels.update(s.labels)
        lb_class = s.load_balancer_class if s.load_balancer_class is not None else lb_class
        etp = s.external_traffic_policy or etp
        external_dns = s.external_dns or external_dns
    return DesiredService(annotations, frozenset(keep), labels, lb_class, etp, external_dns, tuple(names))


def force_conflicts(policies: list[ServicePolicy]) -> bool:
    """Whether the reconciler's apply takes values other field managers own: the last matching
    policy that says (``service.forceConflicts``) decides; by default it does not."""
    force = False
    for policy in policies:
        if policy.service is not None and policy.service.force_conflicts is not None:
            force = policy.service.force_conflicts
    return force


def desired_gateway(policies: list[ServicePolicy]) -> GatewaySettings:
    issuer = None
    allowed = None
    for policy in policies:
        g = policy.gateway
        if g is None:
            continue
        issuer = g.issuer or issuer
        allowed = g.default_allowed_routes if g.default_allowed_routes is not None else allowed
    return GatewaySettings(issuer=issuer, default_allowed_routes=allowed)
