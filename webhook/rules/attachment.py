"""Rules on where a route may attach: the Gateway's listeners, and the policy's tenancy."""

from __future__ import annotations

from collections.abc import Iterator

from .. import gatewayapi as gw
from ..decision import Mode, Violation
from .context import RuleContext
from .references import references_are_granted


def parent_listeners(ctx: RuleContext, ref: gw.ParentRef) -> tuple[gw.Gateway | None, tuple[gw.Listener, ...], str]:
    """The Gateway governing a parentRef, the listeners it selects from, and the owner namespace.

    A parentRef to a ListenerSet uses that set's listeners; its Gateway is the set's parent.
    """
    if ref.is_gateway:
        gateway = ctx.state.gateway(ref.namespace, ref.name)
        return gateway, (gateway.listeners if gateway else ()), ref.namespace
    if ref.is_listenerset:
        obj = ctx.state.get("ListenerSet", ref.namespace, ref.name)
        if obj is None:
            return None, (), ref.namespace
        parent = gw.listenerset_parent(obj)
        gateway = ctx.state.gateway(*parent) if parent else None
        return gateway, gw.listenerset_listeners(obj), ref.namespace
    return None, (), ref.namespace


def listenerset_not_accepted(ctx: RuleContext, ref: gw.ParentRef, gateway: gw.Gateway) -> Violation | None:
    """A parentRef to a ListenerSet its Gateway does not accept (``allowedListeners``):
    ``attachment/NotAllowedByListeners``, or ``attachment/NamespaceNotFound`` (a warning)
    when only the unknown labels of the set's namespace could tell."""
    admitted = gw.gateway_admits_listenerset(gateway, namespace=ref.namespace,
                                             namespace_labels=ctx.labels(ref.namespace))
    if admitted is None:
        return ctx.namespace_unknown(ref.namespace, f"whether {gateway.describe()} accepts ListenerSet "
                                     f"{ref.namespace}/{ref.name} (allowedListeners)", field=ref.field,
                                     subject=ref.subject)
    if admitted is True:
        return None
    return ctx.violation(
        "attachment/NotAllowedByListeners",
        f"ListenerSet {ref.namespace}/{ref.name} is not accepted by {gateway.describe()} "
        f"(allowedListeners.namespaces.from: {gateway.allowed_listeners_from}), so none of its listeners serve routes",
        field=ref.field,
        subject=ref.subject,
        fix=f"ask the owners of {gateway.describe()} to accept ListenerSets from namespace {ref.namespace} "
            "(spec.allowedListeners), or attach to the Gateway",
    )


def listenerset_is_accepted(ctx: RuleContext, obj: dict, *, namespace: str) -> Iterator[Violation]:
    """A ListenerSet attaches to a Gateway that accepts it, and its certificates are granted."""
    meta = gw.Meta.from_object(obj, default_namespace=namespace)
    obj = {**obj, "metadata": {**(obj.get("metadata") or {}), "namespace": meta.namespace}}
    parent = gw.listenerset_parent(obj)
    if parent is None:
        return
    gateway = ctx.state.gateway(*parent)
    if gateway is None:
        ref = gw.ParentRef(gw.GROUP, "Gateway", parent[0], parent[1], field="spec.parentRef")
        if ctx.may_govern(ref):
            yield ctx.violation(
                "attachment/GatewayNotFound",
                f"{ref.describe()} {ctx.state.missing}, so the ListenerSet cannot be checked against it",
                field="spec.parentRef",
                subject=ref.subject,
                fix=f"create {ref.describe()} first, or correct spec.parentRef",
            )
        return
    governed = ctx.governance(gateway)
    if governed is None:
        yield ctx.governance_unknown(gateway)
    if not governed:
        return
    admitted = gw.gateway_admits_listenerset(gateway, namespace=meta.namespace,
                                             namespace_labels=ctx.labels(meta.namespace))
    if ctx.policy.mirror_listeners and admitted is None:
        yield ctx.namespace_unknown(meta.namespace, f"whether {gateway.describe()} accepts ListenerSets from "
                                    "its namespace (allowedListeners)", field="spec.parentRef")
    if ctx.policy.mirror_listeners and admitted is False:
        yield ctx.violation(
            "listenerset/NotAllowed",
            f"{gateway.describe()} does not accept ListenerSets from namespace {meta.namespace} "
            f"(allowedListeners.namespaces.from: {gateway.allowed_listeners_from})",
            field="spec.parentRef",
            subject=gateway.describe(),
            fix=f"ask the owners of {gateway.describe()} to accept ListenerSets from namespace {meta.namespace} "
                "(spec.allowedListeners.namespaces)",
        )
    refs = [r for listener in gw.listenerset_listeners(obj) for r in listener.certificate_refs]
    yield from references_are_granted(ctx, from_kind="ListenerSet", from_namespace=meta.namespace, refs=refs)


def _listener_summary(listeners: tuple[gw.Listener, ...]) -> str:
    return ", ".join(listener.describe() for listener in listeners) or "no listeners"


def _admission_summary(listener: gw.Listener) -> str:
    if listener.allowed_from == "Selector" and listener.allowed_selector is not None:
        return f"{listener.describe()} admits namespaces labelled {listener.allowed_selector.describe()}"
    if listener.allowed_from == "Same":
        return f"{listener.describe()} admits only routes from its own namespace"
    if listener.allowed_from == "All":
        return f"{listener.describe()} admits all namespaces"
    return f"{listener.describe()} admits no routes (from: {listener.allowed_from})"


def route_attaches_to_listeners(ctx: RuleContext, route: gw.Route) -> Iterator[Violation]:
    """Each parentRef reaches a listener that accepts the route, as the controller would decide.

    The controller accepts a route parent by parent. When another parentRef of the route,
    on a Gateway this policy governs, is known to attach, a refusal is a warning naming its
    parentRef (``attachment.partialAttachment: warn``, the default): the route serves
    traffic there. What the view does not know (a namespace's labels, the kinds of an
    implementation-specific protocol, whether the policy governs the Gateway) is a warning.
    """
    findings: list[Violation] = []
    refusals: list[int] = []  # positions in findings of what the controller itself would report
    attached: list[gw.ParentRef] = []
    for ref in route.parent_refs:
        if not (ref.is_gateway or ref.is_listenerset):
            continue  # a Service parent (GAMMA mesh) or an implementation-specific kind
        gateway, listeners, owner_ns = parent_listeners(ctx, ref)
        if gateway is None:
            if ctx.may_govern(ref):
                parent = f"{ref.kind} {ref.namespace}/{ref.name}"
                findings.append(ctx.violation(
                    "attachment/GatewayNotFound",
                    f"{parent} {ctx.state.missing}, so the route cannot be checked against it",
                    field=ref.field,
                    subject=ref.subject,
                    fix=f"create {parent} first, or correct spec.parentRefs name/namespace",
                ))
            continue
        governed = ctx.governance(gateway)
        if governed is None:
            findings.append(ctx.governance_unknown(gateway))
        if not governed or not ctx.policy.mirror_listeners:
            continue
        if ref.is_listenerset:
            finding = listenerset_not_accepted(ctx, ref, gateway)
            if finding is not None:
                if finding.rule == "attachment/NotAllowedByListeners":
                    refusals.append(len(findings))
                findings.append(finding)
                continue
        attachment = ctx.attachment(route, ref, listeners, owner_namespace=owner_ns)
        if attachment.reason is not None:
            refusals.append(len(findings))
            findings.append(_attachment_violation(ctx, route, ref, attachment, listeners))
        elif attachment.attached:
            attached.append(ref)
        else:
            findings.extend(_undecided(ctx, route, ref, attachment))
    if attached and refusals and ctx.policy.partial_attachment == "warn":
        where = ", ".join(ref.describe() for ref in attached)
        for i in refusals:
            if findings[i].mode is Mode.ENFORCE:
                findings[i] = findings[i].softened(
                    f"the route attaches to {where}, so the controller accepts it there; "
                    "attachment.partialAttachment: warn")
    yield from findings


def _undecided(ctx: RuleContext, route: gw.Route, ref: gw.ParentRef, attachment: gw.Attachment) -> Iterator[Violation]:
    """Warnings for a parentRef that no listener is known to accept, and none is known to refuse."""
    if attachment.unknown_namespace:
        yield ctx.namespace_unknown(route.namespace, f"whether {ref.describe()} admits routes from it "
                                    "(allowedRoutes.namespaces.selector)", field=ref.field, subject=ref.subject)
    if attachment.unknown_kind:
        listeners = "; ".join(v.listener.describe() for v in attachment.verdicts
                              if v.kind_allowed is None and v.may_accept)
        yield ctx.violation(
            "attachment/ImplementationSpecificProtocol",
            f"{ref.describe()} selects {listeners}: an implementation-specific protocol without "
            f"allowedRoutes.kinds, so whether it accepts {route.kind} is for the implementation to say",
            field=ref.field,
            subject=ref.subject,
            fix="read the route's status.parents once it is applied; a listener that lists allowedRoutes.kinds "
                "makes it known",
        )


def _attachment_violation(
    ctx: RuleContext, route: gw.Route, ref: gw.ParentRef, attachment: gw.Attachment, listeners: tuple[gw.Listener, ...]
) -> Violation:
    reason = attachment.reason or ""
    if reason == "NoMatchingParent":
        return ctx.violation(
            "attachment/NoMatchingParent",
            f"{ref.describe()} selects no listener; it has {_listener_summary(listeners)}",
            field=ref.field,
            subject=ref.subject,
            fix="set sectionName to a listener name and/or port to a listener port of that Gateway",
        )
    if reason == "NotAllowedByListeners":
        kinds_refused = [v for v in attachment.verdicts if v.kind_allowed is False]
        if kinds_refused and len(kinds_refused) == len(attachment.verdicts):
            detail = "; ".join(
                f"{v.listener.describe()} accepts {', '.join(sorted(k for _, k in v.listener.accepted_kinds())) or 'no kinds'}"
                for v in kinds_refused
            )
            return ctx.violation(
                "attachment/NotAllowedByListeners",
                f"no listener selected by {ref.describe()} accepts {route.kind}: {detail}",
                field=ref.field,
                subject=ref.subject,
                fix=f"attach to a listener whose protocol or allowedRoutes.kinds includes {route.kind}",
            )
        detail = "; ".join(_admission_summary(v.listener) for v in attachment.verdicts)
        return ctx.violation(
            "attachment/NotAllowedByListeners",
            f"{ref.describe()} does not accept routes from namespace {route.namespace}: {detail}",
            field=ref.field,
            subject=ref.subject,
            fix=(
                f"ask the owners of {'ListenerSet' if ref.is_listenerset else 'Gateway'} {ref.namespace}/{ref.name} "
                f"to admit namespace {route.namespace} (allowedRoutes.namespaces), or attach to a listener that "
                "admits it"
            ),
        )
    listener_hosts = ", ".join(sorted({v.listener.hostname or "*" for v in attachment.verdicts if v.may_accept}))
    return ctx.violation(
        "attachment/NoMatchingListenerHostname",
        f"none of the route's hostnames ({', '.join(route.hostnames)}) intersects the hostnames of the listeners "
        f"of {ref.describe()} that admit it ({listener_hosts})",
        field="spec.hostnames",
        subject=ref.subject,
        fix=f"use hostnames under {listener_hosts}, or attach to a listener that serves them",
    )


def route_namespace_may_use_gateway(ctx: RuleContext, route: gw.Route) -> Iterator[Violation]:
    """The policy's own tenancy: only listed namespaces attach to the governed Gateways."""
    allowed = ctx.policy.allowed_namespaces
    if allowed is None:
        return
    for ref in route.parent_refs:
        gateway, _, _ = parent_listeners(ctx, ref)
        if gateway is None or not ctx.governs(gateway) or route.namespace == gateway.namespace:
            continue
        verdict = allowed.contains(route.namespace, ctx.labels(route.namespace))
        if verdict is None:
            yield ctx.namespace_unknown(
                route.namespace,
                f"whether it may attach routes to {gateway.describe()} (TenancyPolicy {ctx.policy.name} "
                f"attachment.allowedNamespaces: {allowed.describe()})",
                field=ref.field, subject=ref.subject,
            )
        elif verdict is False:
            yield ctx.violation(
                "attachment/NotAllowedByPolicy",
                f"namespace {route.namespace} may not attach routes to {gateway.describe()}: policy "
                f"{ctx.policy.name} allows {allowed.describe()}",
                field=ref.field,
                subject=ref.subject,
                fix=f"ask the platform team to add namespace {route.namespace} to TenancyPolicy {ctx.policy.name}",
            )
