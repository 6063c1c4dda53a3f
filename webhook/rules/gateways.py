"""Guardrails for Gateways: classes, who may open to all namespaces, listener domains, TLS.

The listener guardrails (:data:`LISTENER_GUARDRAILS`) also judge ListenerSets: a set's
listeners are merged into its Gateway, and the set's namespace owns them.
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import gatewayapi as gw
from ..decision import Violation
from ..policy.placeholders import describe_all, resolve_all
from .context import RuleContext
from .placeholders import namespace_facts
from .references import references_are_granted


def gateway_class_is_allowed(ctx: RuleContext, gateway: gw.Gateway) -> Iterator[Violation]:
    """A namespace uses only the GatewayClasses the policy allows it."""
    if not ctx.policy.has_class_rules:
        return
    labels = ctx.labels(gateway.namespace)
    verdicts = [(a, a.namespaces.contains(gateway.namespace, labels)) for a in ctx.policy.allowed_classes]
    allowed = sorted({c for a, selected in verdicts if selected for c in a.class_names})
    if gateway.class_name in allowed:
        return
    if any(selected is None and gateway.class_name in a.class_names for a, selected in verdicts):
        yield ctx.namespace_unknown(gateway.namespace, f"whether it may use GatewayClass {gateway.class_name!r} "
                                    f"(TenancyPolicy {ctx.policy.name} gatewayGuardrails.allowedClasses)",
                                    field="spec.gatewayClassName", subject=f"GatewayClass {gateway.class_name}")
        return
    yield ctx.violation(
        "gateway/GatewayClassNotAllowed",
        f"namespace {gateway.namespace} may not use GatewayClass {gateway.class_name!r} "
        f"(allowed: {', '.join(allowed) or 'none'})",
        field="spec.gatewayClassName",
        subject=f"GatewayClass {gateway.class_name}",
        fix=f"use one of: {', '.join(allowed)}" if allowed else "ask the platform team for a GatewayClass",
    )


def gateway_opens_to_all_only_if_allowed(ctx: RuleContext, gateway: gw.Gateway | gw.ListenerSet) -> Iterator[Violation]:
    """Only listed namespaces may accept routes from every namespace (``from: All``)."""
    allowed = ctx.policy.allow_all_namespaces
    if allowed is None:
        return
    verdict = allowed.contains(gateway.namespace, ctx.labels(gateway.namespace))
    if verdict:
        return
    for listener in gateway.listeners:
        if listener.allowed_from != "All":
            continue
        if verdict is None:
            yield ctx.namespace_unknown(
                gateway.namespace, f"whether {listener.describe()} may admit routes from all namespaces "
                f"(TenancyPolicy {ctx.policy.name} gatewayGuardrails.allowAllNamespaces: {allowed.describe()})",
                field=f"{listener.field}.allowedRoutes.namespaces.from", subject=f"listener {listener.name}")
            continue
        yield ctx.violation(
            "gateway/AllNamespacesNotAllowed",
            f"{listener.describe()} admits routes from all namespaces, which namespace {gateway.namespace} may not do",
            field=f"{listener.field}.allowedRoutes.namespaces.from",
            subject=f"listener {listener.name}",
            fix="use from: Selector with a namespace selector, or from: Same",
        )


def _within(hostname: str, domain: str) -> bool:
    return hostname == domain or hostname.endswith("." + domain) or gw.hostname_matches(domain, hostname)


def _bare(hostname: str) -> str:
    return hostname[2:] if gw.is_wildcard(hostname) else hostname


def listener_hostnames_are_in_domains(ctx: RuleContext, gateway: gw.Gateway | gw.ListenerSet) -> Iterator[Violation]:
    """Listener hostnames stay within the domains the platform owns."""
    if not ctx.policy.listener_domains:
        return
    resolved = resolve_all(ctx.policy.listener_domains, namespace_facts(ctx, gateway.namespace))
    domains = [r.pattern for r in resolved if r.pattern]
    for listener in gateway.listeners:
        if not listener.matches_hostnames:
            continue  # TCP, UDP, implementation-specific (an Istio waypoint's HBONE): hostname is ignored
        if any(r.unknown for r in resolved) and not (
                listener.hostname and any(_within(_bare(listener.hostname), d.removeprefix("*.")) for d in domains)):
            yield ctx.namespace_unknown(
                gateway.namespace, f"whether {listener.describe()} is within the allowed domains (a placeholder in "
                "gatewayGuardrails.listenerDomains)", field=f"{listener.field}.hostname",
                subject=f"listener {listener.name}")
            continue
        described = describe_all(resolved) if len(domains) < len(resolved) else ", ".join(domains)
        if listener.hostname is None:
            yield ctx.violation(
                "gateway/ListenerHostnameNotAllowed",
                f"{listener.describe()} has no hostname, so it serves every domain, not only {described}",
                field=f"{listener.field}.hostname",
                subject=f"listener {listener.name} *",
                fix=f"set a hostname under {', '.join(domains) or described}",
            )
            continue
        if not any(_within(_bare(listener.hostname), d.removeprefix("*.")) for d in domains):
            yield ctx.violation(
                "gateway/ListenerHostnameNotAllowed",
                f"listener hostname {listener.hostname} is outside the allowed domains {described}",
                field=f"{listener.field}.hostname",
                subject=f"listener {listener.name} {listener.hostname}",
                fix=f"use a hostname under {', '.join(domains) or described}",
            )


def tls_listeners_have_certificates(ctx: RuleContext, gateway: gw.Gateway | gw.ListenerSet) -> Iterator[Violation]:
    """HTTPS listeners and TLS listeners that terminate name their certificates."""
    if not ctx.policy.require_certificate_refs:
        return
    for listener in gateway.listeners:
        terminates = listener.protocol == "HTTPS" or (listener.protocol == "TLS" and listener.tls_mode == "Terminate")
        if terminates and not listener.certificate_refs:
            yield ctx.violation(
                "gateway/InvalidCertificateRef",
                f"{listener.describe()} terminates TLS but names no certificateRefs",
                field=f"{listener.field}.tls.certificateRefs",
                subject=f"listener {listener.name}",
                fix="add tls.certificateRefs naming the Secret with the certificate (cert-manager can create it)",
            )


def gateway_references_are_granted(ctx: RuleContext, gateway: gw.Gateway) -> Iterator[Violation]:
    yield from references_are_granted(
        ctx, from_kind="Gateway", from_namespace=gateway.namespace, refs=gateway.certificate_refs
    )


# The guardrails that read only listeners and their owner's namespace.
LISTENER_GUARDRAILS = (
    gateway_opens_to_all_only_if_allowed,
    listener_hostnames_are_in_domains,
    tls_listeners_have_certificates,
)

GATEWAY_RULES = (
    gateway_class_is_allowed,
    *LISTENER_GUARDRAILS,
    gateway_references_are_granted,
)
