"""Partial attachment: the controller accepts a route parent by parent.

A refusal the controller itself would report (NotAllowedByListeners, NoMatchingParent,
NoMatchingListenerHostname) on one parentRef of a route that another governed parentRef
accepts is a warning naming the refusing parentRef, unless the policy says
``attachment.partialAttachment: deny``. Findings of the policy's own (hostnames,
NotAllowedByPolicy) deny either way. The scenario folder ``partial-attachment`` runs the
same through the HTTPS server.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from webhook.decision import Mode
from webhook.engine import decide
from webhook.offline import synthesize_request
from webhook.policy.loader import load_documents
from webhook.state.store import ClusterState

REPO = Path(__file__).resolve().parents[1]
CLUSTER = [d for d in yaml.safe_load_all((REPO / "tests/scenarios/_shared/cluster.yaml").read_text()) if d]
STATE = ClusterState.from_objects(CLUSTER)


def policies(attachment: str = "", hostnames: str = ""):
    return load_documents([("p.yaml", f"""
apiVersion: routewarden.dev/v1alpha1
kind: TenancyPolicy
metadata: {{name: p}}
spec:
  match: {{gateways: [{{namespace: infra, name: shared}}]}}
  attachment: {{{attachment}}}
  hostnames: {{{hostnames}}}
""")])


def route(namespace: str, *parents: dict, hostnames: tuple[str, ...] = ("shop.apples.example.com",)) -> dict:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "r", "namespace": namespace},
            "spec": {"parentRefs": list(parents), "hostnames": list(hostnames)}}


HTTP = {"name": "shared", "namespace": "infra", "sectionName": "http"}
HTTPS = {"name": "shared", "namespace": "infra", "sectionName": "https"}
NOPE = {"name": "shared", "namespace": "infra", "sectionName": "nope"}
TCP = {"name": "shared", "namespace": "infra", "sectionName": "tcp"}


@pytest.mark.parametrize(
    ("parents", "hostnames", "rule"),
    [
        ((HTTP, HTTPS), ("shop.apples.example.com",), "attachment/NotAllowedByListeners"),
        ((HTTPS, HTTP), ("shop.apples.example.com",), "attachment/NotAllowedByListeners"),
        ((HTTP, NOPE), ("shop.apples.example.com",), "attachment/NoMatchingParent"),
        ((HTTP, TCP), ("shop.apples.example.com",), "attachment/NotAllowedByListeners"),
    ],
    ids=["namespace-refused", "refusing-parent-first", "no-such-listener", "kind-refused"],
)
def test_a_refusal_on_one_parent_of_an_attached_route_warns_naming_it(
    parents: tuple[dict, ...], hostnames: tuple[str, ...], rule: str
) -> None:
    """The route attaches through another parentRef: the refusal only warns, and says which parentRef."""
    decision = decide(synthesize_request(route("apples", *parents, hostnames=hostnames)), policies(), STATE)
    assert decision.allowed, decision.message
    (finding,) = decision.violations
    assert (finding.rule, finding.mode) == (rule, Mode.WARN)
    refused = next(i for i, p in enumerate(parents) if p is not HTTP)
    assert f"spec.parentRefs[{refused}]" == finding.field
    assert "attaches to Gateway infra/shared sectionName http" in finding.message


def test_a_route_whose_parents_all_refuse_it_is_denied() -> None:
    """Nothing attaches: every refusal denies, as before."""
    decision = decide(synthesize_request(route("cherries", HTTP, HTTPS)), policies(), STATE)
    assert not decision.allowed
    assert [v.mode for v in decision.violations] == [Mode.ENFORCE, Mode.ENFORCE]


def test_partial_attachment_deny_keeps_each_refusal_a_denial() -> None:
    """attachment.partialAttachment: deny says so in words."""
    decision = decide(synthesize_request(route("apples", HTTP, HTTPS)), policies("partialAttachment: deny"), STATE)
    assert not decision.allowed and decision.reason == "NotAllowedByListeners"


def test_a_hostname_finding_still_denies_a_partially_attached_route() -> None:
    """The controller would attach there; the policy's own hostname rule is what refuses."""
    hostnames = "allowed: [{namespaces: {names: [apples]}, patterns: ['*.apples.example.com']}]"
    decision = decide(synthesize_request(route("apples", HTTP, HTTPS, hostnames=("shop.example.com",))),
                      policies(hostnames=hostnames), STATE)
    assert not decision.allowed and decision.reason == "HostnameNotAllowed"
    assert {(v.rule, v.mode) for v in decision.violations} == {
        ("attachment/NotAllowedByListeners", Mode.WARN), ("hostnames/HostnameNotAllowed", Mode.ENFORCE)}


def test_a_policy_that_audits_keeps_the_refusal_silent() -> None:
    """Softening never makes a finding louder: an audited refusal stays audited."""
    decision = decide(synthesize_request(route("apples", HTTP, HTTPS)), policies("mode: audit"), STATE)
    assert decision.allowed and not decision.warnings
    assert [v.mode for v in decision.violations] == [Mode.AUDIT]
