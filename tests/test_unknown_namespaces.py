"""Unknown is unknown: a rule that needs the labels of a namespace the view does not hold
answers with a warning that says so, never a denial and never silence.

The scenario folder ``unknown-namespaces`` runs each rule through the engine and the
HTTPS server; these tests pin the semantics of namespace sets and the wording.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from webhook.decision import Mode
from webhook.engine import decide
from webhook.offline import synthesize_request
from webhook.policy.loader import load_documents
from webhook.policy.model import NamespaceSet
from webhook.state.store import ClusterState

REPO = Path(__file__).resolve().parents[1]
CLUSTER = [d for d in yaml.safe_load_all((REPO / "tests/scenarios/_shared/cluster.yaml").read_text()) if d]
NAME = "kubernetes.io/metadata.name"


@pytest.mark.parametrize(
    ("namespaces", "labels", "expected"),
    [
        ({"selector": {}}, None, True),
        ({"selector": {}}, {"team": "a"}, True),
        ({"names": ["ghost"]}, None, True),
        ({"names": ["other"]}, None, False),
        ({"selector": {"matchLabels": {"team": "a"}}}, None, None),
        ({"names": ["other"], "selector": {"matchLabels": {"team": "a"}}}, None, None),
        ({"selector": {"matchLabels": {NAME: "ghost"}}}, None, True),
        ({"selector": {"matchExpressions": [{"key": NAME, "operator": "NotIn", "values": ["ghost"]}]}}, None, False),
        ({"selector": {"matchLabels": {"team": "a"}}}, {"team": "b"}, False),
    ],
)
def test_a_namespace_set_decides_what_it_can_without_labels(
    namespaces: dict, labels: dict | None, expected: bool | None
) -> None:
    """{} matches every namespace, known or not; a selector on the name label needs no labels; others are unknown."""
    assert NamespaceSet.from_dict(namespaces).contains("ghost", labels) is expected


POLICY = """
apiVersion: routewarden.dev/v1alpha1
kind: TenancyPolicy
metadata: {name: p}
spec:
  match: {gateways: [{namespace: infra, name: shared}]}
  attachment:
    allowedNamespaces: {selector: {matchLabels: {tenant: "true"}}}
"""
ROUTE = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
         "metadata": {"name": "r", "namespace": "ghost"},
         "spec": {"parentRefs": [{"name": "shared", "namespace": "infra", "sectionName": "http"}],
                  "hostnames": ["ghost.example.com"]}}


def online(objects: list[dict]) -> ClusterState:
    state = ClusterState(expected_kinds=["Namespace", "Gateway", "HTTPRoute"])
    for obj in objects:
        state.apply(obj["kind"], obj)
    for kind in state.expected_kinds:
        state.mark_synced(kind)
    return state


@pytest.mark.parametrize(
    ("state", "where", "fix"),
    [
        (ClusterState.from_objects(CLUSTER), "is not in the manifests", "pass the Namespace ghost manifest"),
        (online(CLUSTER), "is not in the cluster view (yet)", "create Namespace ghost with its labels"),
    ],
    ids=["offline", "online"],
)
def test_the_warning_says_what_is_unknown_and_how_to_make_it_known(state: ClusterState, where: str, fix: str) -> None:
    """Offline it asks for the Namespace manifest (or --cluster); online it says the cluster view lacks it."""
    decision = decide(synthesize_request(ROUTE), load_documents([("p.yaml", POLICY)]), state)
    unknown = [v for v in decision.violations if v.rule == "attachment/NamespaceNotFound"]
    assert unknown and all(v.mode is Mode.WARN for v in unknown)
    assert any(where in v.message and fix in v.fix for v in unknown), [v.render() for v in unknown]


def test_the_same_route_in_a_known_namespace_without_the_label_is_denied() -> None:
    """Known labels decide: the policy's finding denies as before."""
    state = ClusterState.from_objects([*CLUSTER, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ghost"}}])
    decision = decide(synthesize_request(ROUTE), load_documents([("p.yaml", POLICY)]), state)
    assert not decision.allowed and "attachment/NotAllowedByPolicy" in decision.rules
