"""A route review looks at the routes that share its names, never at all of them.

The ownership rules find rivals through indexes (hostname, parent domain, routes without
hostnames by the listener they select). This counts every route a review is handed by
the view, and the claims it computes, with 20 and with 2,000 unrelated routes on the
same Gateway, through its ListenerSets and on other Gateways: the counts must not grow.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from test_ownership import CLUSTER, POLICY, listener_set, on, path, route, via

from webhook.engine import decide
from webhook.offline import synthesize_request
from webhook.policy.loader import load_documents
from webhook.rules import ownership
from webhook.state.store import ClusterState

READERS = ("routes", "objects", "routes_with_hostname", "routes_under_domain", "routes_without_hostnames",
           "routes_attached_to", "routes_attached_to_listenerset", "routes_referencing_namespace")


def unrelated(n: int) -> list[dict[str, Any]]:
    """Routes that share no name with the reviews below: other hostnames on the shared
    Gateway, routes without hostnames on its catch-all listener and on a tenant set's
    listener of another name, and routes on another Gateway."""
    out: list[dict[str, Any]] = [listener_set("bulk", "ls", {"name": "bulk", "port": 7000, "protocol": "HTTP",
                                                            "hostname": "bulk.example.com",
                                                            "allowedRoutes": {"namespaces": {"from": "All"}}})]
    for i in range(n):
        team, created = f"team-{i % 50}", "2026-01-01T00:00:00Z"
        kind = "GRPCRoute" if i % 7 == 0 else "HTTPRoute"
        out.append(route(team, f"named-{i}", on("http"), [f"r{i}.example.com"], created=created, kind=kind))
        out.append(route(team, f"grpc-{i}", on("grpc"), [f"g{i}.example.com"], created=created, kind=kind))
        out.append(route(team, f"catch-{i}", on("any"), created=created))
        out.append(route(team, f"bulk-{i}", via("ls", "bulk"), created=created,
                         rules=[path("PathPrefix", f"/p{i}")]))
        out.append(route(team, f"free-{i}", {"name": "free", "namespace": "infra"}, [f"shop{i}.example.com"],
                         created=created))
    return out


REVIEWS = {
    "named hostname": route("team", "shop", on("http"), ["shop.example.com"]),
    "no hostnames": route("store-ns", "login", on("foo"), rules=[path("Exact", "/login")]),
    "through a set": route("team", "via", via("ls"), ["app.example.com"]),
    "GRPCRoute": route("team", "g", on("grpc"), ["api.example.com"], kind="GRPCRoute"),
    "before its Gateway": route("team", "pend", on("http", "later"), ["p.example.com"]),
}


def examined(state: ClusterState, obj: dict[str, Any], policy: str, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many routes the view hands one review, by reader, and how many claims it computes."""
    seen: Counter[str] = Counter()
    for name in READERS:
        original = getattr(ClusterState, name)

        def counting(self: ClusterState, *args: Any, _name: str = name, _original: Callable[..., Any] = original) -> Any:
            found = list(_original(self, *args))
            seen[_name] += len(found)
            return iter(found) if _name in ("routes", "objects") else tuple(found)

        monkeypatch.setattr(ClusterState, name, counting)
    compute = ownership._claims

    def claims(*args: Any) -> Any:
        seen["claims computed"] += 1
        return compute(*args)

    monkeypatch.setattr(ownership, "_claims", claims)
    try:
        decide(synthesize_request(obj), load_documents([("p.yaml", policy)]), state)
    finally:
        monkeypatch.undo()
    return seen


@pytest.mark.parametrize("unique", ["host", "path"])
@pytest.mark.parametrize("review", sorted(REVIEWS))
def test_routes_examined_per_review_do_not_grow_with_unrelated_routes(
    review: str, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """20 or 2,000 unrelated routes: the same routes looked at, the same claims computed."""
    policy = POLICY + f"  hostnames: {{unique: {unique}}}\n"
    small = ClusterState.from_objects([*CLUSTER, *unrelated(4)])
    large = ClusterState.from_objects([*CLUSTER, *unrelated(400)])
    few, many = (examined(state, REVIEWS[review], policy, monkeypatch) for state in (small, large))
    assert few == many
    assert sum(few.values()) < 30, few
