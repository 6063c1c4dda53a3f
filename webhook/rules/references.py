"""Cross-namespace references need a ReferenceGrant (``ResolvedRefs=False, RefNotPermitted``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .. import gatewayapi as gw
from ..decision import Violation
from .context import RuleContext

_UNKNOWN = object()


def references_are_granted(
    ctx: RuleContext, *, from_kind: str, from_namespace: str, refs: Iterable[gw.ObjectRef]
) -> Iterator[Violation]:
    """Every reference into another namespace is permitted by a ReferenceGrant there."""
    if not ctx.policy.require_reference_grant:
        return
    for ref in refs:
        if ref.namespace == from_namespace:
            continue
        # Every policy asks the same question of the same grants: answer it once per request.
        key = ("granted", from_kind, from_namespace, ref.group, ref.kind, ref.namespace, ref.name)
        granted = ctx.memo.get(key, _UNKNOWN)
        if granted is _UNKNOWN:
            granted = ctx.memo[key] = gw.reference_permitted(
                ctx.state.reference_grants(ref.namespace),
                from_group=gw.GROUP,
                from_kind=from_kind,
                from_namespace=from_namespace,
                to=ref,
            )
        if granted is None:
            group = ref.group or '""'
            # ``*`` would be YAML's alias marker and match only an object named "*": omit the name instead.
            name = f", name: {ref.name}" if ref.name and ref.name != "*" else ""
            finding = ctx.violation(
                "references/RefNotPermitted",
                f"{ref.describe()} is in another namespace and no ReferenceGrant in {ref.namespace} allows "
                f"{from_kind} from namespace {from_namespace} to refer to it",
                field=ref.field,
                subject=ref.subject,
                fix=(
                    f"add a ReferenceGrant in namespace {ref.namespace} with from "
                    f"{{group: {gw.GROUP}, kind: {from_kind}, namespace: {from_namespace}}} and to "
                    f"{{group: {group}, kind: {ref.kind}{name}}}"
                ),
            )
            if ref.group == gw.GROUP and ref.kind in gw.ROUTE_KINDS:
                # A backendRef to a route is route delegation (kgateway's, for one), which the
                # spec does not define: whether it needs a grant is the implementation's to say.
                finding = finding.softened(
                    "a backendRef to a route is route delegation, an implementation's extension: whether it "
                    "needs a ReferenceGrant is the implementation's to say")
            yield finding


def route_references_are_granted(ctx: RuleContext, route: gw.Route, *, governed: bool) -> Iterator[Violation]:
    if governed:
        yield from references_are_granted(
            ctx, from_kind=route.kind, from_namespace=route.namespace, refs=route.backend_refs
        )
