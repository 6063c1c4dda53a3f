"""``routewarden explain`` for ListenerSets: which listeners the Gateway will serve, and why not."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from webhook.explain import explain_listenerset, render_listenersets_text
from webhook.state.store import ClusterState

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path("tests/cli/listenersets")


def explain_json(*paths: str) -> tuple[int, dict]:
    proc = subprocess.run([sys.executable, "-m", "webhook", "explain", *paths, "-o", "json"], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_each_listener_of_a_set_says_whether_it_is_served_and_why_not() -> None:
    """Conflicted (with whom), ProtocolConflict, InvalidRouteKinds, RefNotPermitted, and a good one; exit 1."""
    code, document = explain_json(str(FIXTURES))
    assert code == 1 and document["schemaVersion"] == 1
    sets = {f"{s['namespace']}/{s['name']}": s for s in document["listenerSets"]}
    mine = sets["team/mine"]
    assert (mine["accepted"], mine["reason"], mine["gateway"]) == (True, "Accepted", "Gateway infra/shared")
    listeners = {lr["name"]: lr for lr in mine["listeners"]}
    assert {name: lr["served"] for name, lr in listeners.items()} == {
        "echo": False, "raw": False, "tls": False, "web": False, "good": True}
    assert "ListenerSet other/ls" in listeners["echo"]["why"][0] and "HostnameConflict" in listeners["echo"]["why"][0]
    assert "ProtocolConflict" in listeners["raw"]["why"][0] and "Gateway infra/shared" in listeners["raw"]["why"][0]
    assert listeners["tls"]["why"] == ["InvalidRouteKinds: HTTPRoute (not served on TLS)"]
    assert listeners["tls"]["kinds"] == []
    assert listeners["web"]["why"][0].startswith("RefNotPermitted")
    assert listeners["good"]["why"] == [] and listeners["good"]["kinds"] == ["GRPCRoute", "HTTPRoute"]
    assert not mine["served"]
    assert sets["other/ls"]["served"] is True


def test_a_set_the_gateway_does_not_accept_says_so() -> None:
    """allowedListeners refuses the namespace: NotAllowed, with the Gateway's setting."""
    _, document = explain_json(str(FIXTURES))
    [stray] = [s for s in document["listenerSets"] if s["name"] == "stray"]
    assert (stray["accepted"], stray["reason"]) == (False, "NotAllowed")
    assert "allowedListeners.namespaces.from: Selector" in stray["message"]


def test_only_the_accepted_sets_with_every_listener_served_exit_zero() -> None:
    """The platform file alone: the other team's set is served, so exit 0."""
    code, document = explain_json(str(FIXTURES / "platform.yaml"))
    assert code == 0 and [s["served"] for s in document["listenerSets"]] == [True]


def _set(listeners: list[dict], *, namespace: str = "team", parent: dict | None = None) -> dict:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "ListenerSet",
            "metadata": {"name": "ls", "namespace": namespace},
            "spec": {"parentRef": parent or {"name": "shared", "namespace": "infra"}, "listeners": listeners}}


GATEWAY = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
           "metadata": {"name": "shared", "namespace": "infra"},
           "spec": {"gatewayClassName": "c", "allowedListeners": {"namespaces": {"from": "Selector",
                                                                                 "selector": {"matchLabels": {"t": "y"}}}},
                    "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}}


@pytest.mark.parametrize(("objects", "obj", "accepted", "reason"), [
    ([], _set([{"name": "a", "port": 8080, "protocol": "HTTP"}]), False, "GatewayNotFound"),
    ([GATEWAY], _set([{"name": "a", "port": 8080, "protocol": "HTTP"}]), None, "NotAllowed"),
    ([GATEWAY, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "infra"}}],
     _set([{"name": "a", "port": 80, "protocol": "HTTP"}], namespace="infra"), False, "NotAllowed"),
    ([GATEWAY], _set([{"name": "a", "port": 80, "protocol": "TCP"}], parent={"name": "x", "kind": "Mesh", "group": "ex.io"}),
     None, "NotAGateway"),
], ids=["no-gateway", "labels-unknown", "refused", "not-a-gateway-parent"])
def test_a_set_whose_gateway_is_missing_or_undecided_is_not_guessed(objects: list, obj: dict, accepted, reason: str) -> None:
    """Missing Gateway, unknown namespace labels, a refusing Gateway, a parent that is not a Gateway."""
    report = explain_listenerset(obj, ClusterState.from_objects(objects))
    assert (report.accepted, report.reason) == (accepted, reason)


def test_a_set_whose_every_listener_is_conflicted_is_listeners_not_valid() -> None:
    """The ListenerSet condition the controller sets: Accepted=False, ListenersNotValid; and in text."""
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team", "labels": {"t": "y"}}}
    report = explain_listenerset(_set([{"name": "raw", "port": 80, "protocol": "TCP"}]),
                                 ClusterState.from_objects([GATEWAY, namespace]), source="ls.yaml", line=1)
    assert (report.accepted, report.reason) == (False, "ListenersNotValid")
    text = render_listenersets_text([report])
    assert "ListenerSet team/ls (ls.yaml:1): NOT accepted by Gateway infra/shared: ListenersNotValid" in text
    assert "listener raw (TCP:80 *): NOT served" in text and "ProtocolConflict" in text


def test_a_malformed_set_is_reported_not_raised() -> None:
    """Wrong field types: the report carries the error."""
    report = explain_listenerset(_set("not-a-list"), ClusterState.from_objects([GATEWAY]))  # type: ignore[arg-type]
    assert report.error.startswith("spec.listeners") and not report.served
