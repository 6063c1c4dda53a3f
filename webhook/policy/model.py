"""The typed policy model. Documents are schema-checked before they get here.

A :class:`TenancyPolicy` governs a set of Gateways (``spec.match``) and says, for routes
attaching to them and for the Gateways themselves, which rules hold and in which
:class:`~webhook.decision.Mode`. Rule ids are listed in :data:`RULES`; a mode can be set
per policy, per section and per rule id (most specific wins).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..decision import Mode
from ..gatewayapi import NAME_LABEL, LabelSelector, hostname_matches
from .placeholders import normalize_pattern

# rule id -> (section whose mode applies, the default mode when nothing is set)
RULES: Mapping[str, tuple[str, Mode | None]] = {
    "attachment/NoMatchingParent": ("attachment", None),
    "attachment/NotAllowedByListeners": ("attachment", None),
    "attachment/NoMatchingListenerHostname": ("attachment", None),
    "attachment/NotAllowedByPolicy": ("attachment", None),
    "attachment/GatewayNotFound": ("attachment", Mode.WARN),
    "attachment/NamespaceNotFound": ("attachment", Mode.WARN),
    "attachment/ImplementationSpecificProtocol": ("attachment", Mode.WARN),
    "attachment/RouteKindConflict": ("attachment", None),
    "listenerset/NotAllowed": ("attachment", None),
    "listeners/Conflicted": ("attachment", Mode.WARN),
    "listeners/InvalidRouteKinds": ("attachment", Mode.WARN),
    "listeners/ListenersNotValid": ("attachment", None),
    "hostnames/HostnameRequired": ("hostnames", None),
    "hostnames/HostnameNotAllowed": ("hostnames", None),
    "hostnames/HostnameConflict": ("hostnames", None),
    "hostnames/PathConflict": ("hostnames", None),
    "hostnames/HostnameOwnerUnknown": ("hostnames", Mode.WARN),
    "references/RefNotPermitted": ("references", None),
    "gateway/GatewayClassNotAllowed": ("gatewayGuardrails", None),
    "gateway/AllNamespacesNotAllowed": ("gatewayGuardrails", None),
    "gateway/ListenerHostnameNotAllowed": ("gatewayGuardrails", None),
    "gateway/InvalidCertificateRef": ("gatewayGuardrails", None),
    "blastradius/RoutesDetached": ("blastRadius", Mode.WARN),
    "blastradius/RefsRevoked": ("blastRadius", Mode.WARN),
    "blastradius/ListenerSetsDetached": ("blastRadius", Mode.WARN),
    "blastradius/ListenersConflicted": ("blastRadius", Mode.WARN),
    "blastradius/WaitingRoutesConflict": ("blastRadius", Mode.WARN),
    "blastradius/HostnamesMoved": ("blastRadius", Mode.WARN),
    "state/StaleClusterView": ("staleState", Mode.WARN),
    "services/ImpersonatesGeneratedService": ("services", Mode.WARN),
}


@dataclass(frozen=True, slots=True)
class NamespaceSet:
    """Namespaces by name or by label selector (either one matching is enough)."""

    names: frozenset[str] = frozenset()
    selector: LabelSelector | None = None

    @classmethod
    def from_dict(cls, value: Mapping[str, Any] | None) -> NamespaceSet | None:
        if value is None:
            return None
        selector = value.get("selector")
        return cls(
            names=frozenset(value.get("names") or ()),
            selector=LabelSelector.from_dict(selector) if selector is not None else None,
        )

    def contains(self, namespace: str, labels: Mapping[str, str] | None) -> bool | None:
        """True/False, or None when only the labels of a namespace the view does not hold
        could tell. A selector that reads no label but the one kube-apiserver sets on every
        namespace (``kubernetes.io/metadata.name``) is decided without them; so is ``{}``,
        which matches every namespace."""
        if namespace in self.names:
            return True
        if self.selector is None:
            return False
        if labels is None:
            if self.selector.keys <= {NAME_LABEL}:
                return self.selector.matches({NAME_LABEL: namespace})
            return None
        return self.selector.matches(labels)

    def describe(self) -> str:
        parts = []
        if self.names:
            parts.append("namespaces " + ", ".join(sorted(self.names)))
        if self.selector is not None:
            parts.append(f"namespaces labelled {self.selector.describe()}")
        return " or ".join(parts) or "no namespace"

    @property
    def empty(self) -> bool:
        return not self.names and self.selector is None


@dataclass(frozen=True, slots=True)
class GatewayMatch:
    gateways: frozenset[tuple[str | None, str]] = frozenset()  # (namespace or None for any, name)
    class_names: frozenset[str] = frozenset()
    namespaces: NamespaceSet | None = None

    @property
    def everything(self) -> bool:
        return not self.gateways and not self.class_names and self.namespaces is None

    def matches(
        self, *, namespace: str, name: str, class_name: str | None, namespace_labels: Mapping[str, str] | None
    ) -> bool | None:
        """Whether the Gateway is governed; None when only the unknown labels of its namespace could tell."""
        if self.everything:
            return True
        if (namespace, name) in self.gateways or (None, name) in self.gateways:
            return True
        if class_name is not None and class_name in self.class_names:
            return True
        return self.namespaces is not None and self.namespaces.contains(namespace, namespace_labels)


@dataclass(frozen=True, slots=True)
class HostnameAllowance:
    namespaces: NamespaceSet
    patterns: tuple[str, ...]

    def permits(self, hostname: str) -> bool:
        return any(hostname_matches(p, hostname) for p in self.patterns)


@dataclass(frozen=True, slots=True)
class ClassAllowance:
    namespaces: NamespaceSet
    class_names: frozenset[str]


@dataclass(frozen=True, slots=True)
class Exemptions:
    namespaces: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    service_accounts: frozenset[str] = frozenset()

    def covers(self, *, namespace: str, username: str, groups: tuple[str, ...]) -> bool:
        if namespace and namespace in self.namespaces:
            return True
        if username in self.users:
            return True
        if self.groups.intersection(groups):
            return True
        prefix = "system:serviceaccount:"
        return username.startswith(prefix) and username[len(prefix):].replace(":", "/", 1) in self.service_accounts


@dataclass(frozen=True, slots=True)
class TenancyPolicy:
    name: str
    source: str = ""
    mode: Mode = Mode.ENFORCE
    section_modes: Mapping[str, Mode] = field(default_factory=dict)
    rule_modes: Mapping[str, Mode] = field(default_factory=dict)
    match: GatewayMatch = field(default_factory=GatewayMatch)
    mirror_listeners: bool = True
    # A mirror finding on one parentRef of a route another governed parentRef accepts
    # only warns (the controller attaches the route there); "deny" keeps it a denial.
    partial_attachment: str = "warn"
    allowed_namespaces: NamespaceSet | None = None
    hostnames_required: bool = False
    hostnames_unique: bool = False  # hostnames.unique: host (or true), or path
    unique_paths: bool = False  # hostnames.unique: path: namespaces share a hostname by paths that do not overlap
    hostnames_allowed: tuple[HostnameAllowance, ...] = ()
    require_reference_grant: bool = True
    allowed_classes: tuple[ClassAllowance, ...] = ()
    has_class_rules: bool = False  # allowedClasses was given (an empty list then allows no class)
    allow_all_namespaces: NamespaceSet | None = None
    listener_domains: tuple[str, ...] = ()
    require_certificate_refs: bool = True
    stale_max_age: float | None = None
    exempt: Exemptions = field(default_factory=Exemptions)

    def mode_for(self, rule: str) -> Mode:
        """Rule override, else section mode, else the rule's own default, else the policy's."""
        if rule in self.rule_modes:
            return self.rule_modes[rule]
        section, default = RULES[rule]
        if section in self.section_modes:
            return self.section_modes[section]
        return default if default is not None else self.mode

    @classmethod
    def from_document(cls, doc: Mapping[str, Any], *, source: str = "") -> TenancyPolicy:
        spec = doc.get("spec") or {}
        sections = {}
        for section in ("attachment", "hostnames", "references", "gatewayGuardrails", "blastRadius", "staleState"):
            mode = (spec.get(section) or {}).get("mode")
            if mode:
                sections[section] = Mode(mode)
        attachment = spec.get("attachment") or {}
        # A Gateway or namespace the view does not hold yet is a GitOps apply-order matter:
        # unknownGateway (default warn) decides it, not attachment.mode; spec.rules still wins.
        unknown = Mode(attachment.get("unknownGateway", "warn"))
        policy_mode = Mode(spec.get("mode", "enforce"))
        # What an implementation decides is unknown for good: at most a warning.
        implementation = Mode.AUDIT if policy_mode is Mode.AUDIT else Mode.WARN
        rule_modes_extra = {"attachment/GatewayNotFound": unknown, "attachment/NamespaceNotFound": unknown,
                            "attachment/ImplementationSpecificProtocol": implementation}
        # Two undated claimants offline: never a denial of either, at most a warning (audit
        # when the conflict itself only audits); spec.rules can still set it.
        conflict = (spec.get("rules") or {}).get("hostnames/HostnameConflict") or sections.get("hostnames") \
            or spec.get("mode", "enforce")
        rule_modes_extra["hostnames/HostnameOwnerUnknown"] = Mode.AUDIT if Mode(conflict) is Mode.AUDIT else Mode.WARN
        match = spec.get("match") or {}
        hostnames = spec.get("hostnames") or {}
        references = spec.get("references") or {}
        guard = spec.get("gatewayGuardrails") or {}
        exempt = spec.get("exempt") or {}
        stale = spec.get("staleState") or {}
        return cls(
            name=(doc.get("metadata") or {}).get("name", ""),
            source=source,
            mode=policy_mode,
            section_modes=sections,
            rule_modes={**rule_modes_extra, **{k: Mode(v) for k, v in (spec.get("rules") or {}).items()}},
            match=GatewayMatch(
                gateways=frozenset((g.get("namespace"), g["name"]) for g in match.get("gateways") or ()),
                class_names=frozenset(match.get("gatewayClassNames") or ()),
                namespaces=NamespaceSet.from_dict(match.get("namespaces")),
            ),
            mirror_listeners=attachment.get("mirrorListeners", True),
            partial_attachment=attachment.get("partialAttachment", "warn"),
            allowed_namespaces=NamespaceSet.from_dict(attachment.get("allowedNamespaces")),
            hostnames_required=hostnames.get("required", False),
            hostnames_unique=hostnames.get("unique", False) in (True, "host", "path"),
            unique_paths=hostnames.get("unique") == "path",
            hostnames_allowed=tuple(
                HostnameAllowance(
                    NamespaceSet.from_dict(a["namespaces"]) or NamespaceSet(),
                    tuple(normalize_pattern(p) for p in a["patterns"]),
                )
                for a in hostnames.get("allowed") or ()
            ),
            require_reference_grant=references.get("requireReferenceGrant", True),
            allowed_classes=tuple(
                ClassAllowance(NamespaceSet.from_dict(a["namespaces"]) or NamespaceSet(), frozenset(a["classNames"]))
                for a in guard.get("allowedClasses") or ()
            ),
            has_class_rules="allowedClasses" in guard,
            allow_all_namespaces=NamespaceSet.from_dict(guard.get("allowAllNamespaces")),
            listener_domains=tuple(normalize_pattern(d) for d in guard.get("listenerDomains") or ()),
            require_certificate_refs=guard.get("requireCertificateRefs", True),
            stale_max_age=float(stale["maxAgeSeconds"]) if stale.get("maxAgeSeconds") else None,
            exempt=Exemptions(
                namespaces=frozenset(exempt.get("namespaces") or ()),
                users=frozenset(exempt.get("users") or ()),
                groups=frozenset(exempt.get("groups") or ()),
                service_accounts=frozenset(exempt.get("serviceAccounts") or ()),
            ),
        )


@dataclass(frozen=True, slots=True)
class PolicySet:
    """Every policy in force, as one immutable value (swapped whole on reload)."""

    tenancy: tuple[TenancyPolicy, ...] = ()
    services: tuple[Any, ...] = ()
    exceptions: tuple[Any, ...] = ()  # TenancyException (policy/exceptions.py)
    sources: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
