"""Changes that would break routes that already exist: say so, naming the routes.

A Gateway UPDATE that narrows ``allowedRoutes`` or drops a listener, a Gateway DELETE,
and a ReferenceGrant UPDATE or DELETE that stops permitting a backendRef are judged by
comparing what the routes in the cluster view get before and after the change.
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import gatewayapi as gw
from ..decision import Violation
from .context import RuleContext

MAX_NAMED = 10


def _names(routes: list[str]) -> str:
    text = ", ".join(routes[:MAX_NAMED])
    if len(routes) > MAX_NAMED:
        text += f" and {len(routes) - MAX_NAMED} more"
    return text


def _accepted(ctx: RuleContext, route: gw.Route, ref: gw.ParentRef, gateway: gw.Gateway | None) -> bool:
    if gateway is None:
        return False
    verdict = gw.evaluate_attachment(
        route, ref, gateway.listeners, owner_namespace=gateway.namespace, namespace_labels=ctx.labels(route.namespace)
    )
    return verdict.reason is None


def gateway_change_keeps_routes(ctx: RuleContext, old: gw.Gateway, new: gw.Gateway | None) -> Iterator[Violation]:
    """Routes accepted by the Gateway before the change are still accepted after it."""
    if not ctx.governs(old):
        return
    detached: list[str] = []
    for route in ctx.state.routes_attached_to(old.namespace, old.name):
        for ref in route.parent_refs:
            attached = ref.is_gateway and ref.gateway_key == old.key and _accepted(ctx, route, ref, old)
            if attached and not _accepted(ctx, route, ref, new):
                detached.append(route.describe())
                break
    if detached:
        what = "deleting" if new is None else "this change to"
        yield ctx.violation(
            "blastradius/RoutesDetached",
            f"{what} {old.describe()} detaches {len(detached)} route(s) that are attached now: {_names(detached)}",
            field="spec.listeners" if new is not None else "",
            fix="move or update those routes first, or keep their listeners and allowedRoutes",
        )


def grant_change_keeps_references(
    ctx: RuleContext, old: gw.ReferenceGrant, new: gw.ReferenceGrant | None
) -> Iterator[Violation]:
    """References permitted by the grant before the change are still permitted after it."""
    namespace = old.meta.namespace
    others = [g for g in ctx.state.reference_grants(namespace) if g.meta.name != old.meta.name]
    before = others + [old]
    after = others + ([new] if new is not None else [])
    broken: list[str] = []
    for route in ctx.state.routes_referencing_namespace(namespace):
        for ref in route.backend_refs:
            if ref.namespace != namespace:
                continue
            args = {"from_group": gw.GROUP, "from_kind": route.kind, "from_namespace": route.namespace, "to": ref}
            if gw.reference_permitted(before, **args) and not gw.reference_permitted(after, **args):
                broken.append(f"{route.describe()} -> {ref.describe()}")
    if broken:
        what = "deleting" if new is None else "this change to"
        yield ctx.violation(
            "blastradius/RefsRevoked",
            f"{what} {old.describe()} revokes {len(broken)} reference(s) in use: {_names(broken)}",
            fix="update those routes first, or keep the grant's from and to entries",
        )
