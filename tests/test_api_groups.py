"""Only Gateway API objects are Gateway API objects: look-alikes of other API groups
(an Istio ``networking.istio.io`` Gateway, a Linkerd ``policy.linkerd.io`` HTTPRoute) never
enter the cluster view, never replace a Gateway API object, and are not governed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from webhook import gatewayapi as gw
from webhook.cli import main
from webhook.commands.inputs import overlay
from webhook.state.kinds import watched_kind_of
from webhook.state.manifests import load_manifests, state_from_manifests
from webhook.state.store import ClusterState

REPO = Path(__file__).resolve().parents[1]
MANIFESTS = REPO / "tests/cli/api-groups/manifests.yaml"
POLICIES = REPO / "tests/cli/policies"


def objects() -> list[dict]:
    return [m.obj for m in load_manifests([MANIFESTS])]


def by_group(kind: str) -> dict[str, dict]:
    return {o["apiVersion"].rpartition("/")[0]: o for o in objects() if o["kind"] == kind}


@pytest.mark.parametrize("kind", ["Gateway", "HTTPRoute"])
@pytest.mark.parametrize("lookalike_first", [True, False])
def test_a_lookalike_never_replaces_the_gateway_api_object(kind: str, lookalike_first: bool) -> None:
    """Whichever comes first, the view holds the Gateway API object of that name."""
    groups = by_group(kind)
    real = groups.pop("gateway.networking.k8s.io")
    [lookalike] = groups.values()
    ordered = [lookalike, real] if lookalike_first else [real, lookalike]
    state = ClusterState.from_objects(ordered)
    held = state.get(kind, "apples" if kind == "HTTPRoute" else "infra", real["metadata"]["name"])
    assert held is not None and held["apiVersion"] == real["apiVersion"]
    if kind == "HTTPRoute":  # routes are kept as what the rules read of them
        assert gw.Route.from_object(held) == gw.Route.from_object(real)
    else:
        assert held == real
    assert state.count(kind) == 1


@pytest.mark.parametrize(
    "api_version, kind, held",
    [
        ("gateway.networking.k8s.io/v1", "Gateway", True),
        ("gateway.networking.k8s.io/v1beta1", "HTTPRoute", True),
        ("networking.istio.io/v1", "Gateway", False),
        ("policy.linkerd.io/v1beta3", "HTTPRoute", False),
        ("v1", "Namespace", True),
        ("example.com/v1", "Namespace", False),
        (None, "Gateway", True),  # list items may omit apiVersion: the watched group is assumed
    ],
)
def test_the_view_holds_a_kind_only_in_its_own_group(api_version: str | None, kind: str, held: bool) -> None:
    """``watched_kind_of`` and ``ClusterState.apply`` agree on what the view may hold."""
    obj = {"kind": kind, "metadata": {"name": "x", "namespace": "" if kind == "Namespace" else "infra"}}
    if api_version is not None:
        obj["apiVersion"] = api_version
    assert (watched_kind_of(obj) is not None) is held
    state = ClusterState()
    state.apply(kind, obj)
    assert (state.count(kind) == 1) is held


def test_the_cluster_overlay_keeps_the_live_gateway_api_object() -> None:
    """``check --cluster``: an Istio Gateway in the manifests does not replace the live Gateway."""
    groups = by_group("Gateway")
    state = ClusterState.from_objects([groups["gateway.networking.k8s.io"]])
    overlay(state, [groups["networking.istio.io"]])
    assert state.gateway("infra", "shared").listeners[0].name == "http"


def test_serve_state_reads_only_gateway_api_objects() -> None:
    """``serve --state`` builds its view with the same reader: the Istio Gateway is left out."""
    state = state_from_manifests(load_manifests([MANIFESTS]))
    assert [listener.name for listener in state.gateway("infra", "shared").listeners] == ["http"]
    assert [r.hostnames for r in state.routes()] == [("web.apples.example.com",)]


def test_check_admits_the_route_and_reports_the_lookalikes_as_not_governed(capsys: pytest.CaptureFixture[str]) -> None:
    """The route attaches to the Gateway API Gateway; the Istio and Linkerd objects are not governed."""
    code = main(["check", "--policies", str(POLICIES), str(MANIFESTS), "-o", "json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 0, document
    results = {(r["apiVersion"], r["kind"]): r for r in document["results"]}
    route = results[("gateway.networking.k8s.io/v1", "HTTPRoute")]
    assert route["result"] == "allow" and route["governed"] is True
    for key in (("networking.istio.io/v1", "Gateway"), ("policy.linkerd.io/v1beta3", "HTTPRoute")):
        assert results[key]["governed"] is False and results[key]["violations"] == []


def test_check_text_names_a_lookalike_as_not_a_gateway_api_object(capsys: pytest.CaptureFixture[str]) -> None:
    """The text report says why the Istio Gateway is not judged, instead of leaving it out silently."""
    main(["check", "--policies", str(POLICIES), str(MANIFESTS)])
    out = capsys.readouterr().out
    assert "Gateway infra/shared (networking.istio.io/v1): not governed: not a Gateway API object" in out
    assert "HTTPRoute apples/web (policy.linkerd.io/v1beta3): not governed: not a Gateway API object" in out


def test_explain_explains_only_the_gateway_api_route(capsys: pytest.CaptureFixture[str]) -> None:
    """``explain`` reports one route, attached to the Gateway API Gateway's listener."""
    code = main(["explain", str(MANIFESTS), "-o", "json"])
    routes = json.loads(capsys.readouterr().out)["routes"]
    assert code == 0
    assert [(r["kind"], r["attached"]) for r in routes] == [("HTTPRoute", True)]
    assert [lr["name"] for lr in routes[0]["parents"][0]["listeners"]] == ["http"]
