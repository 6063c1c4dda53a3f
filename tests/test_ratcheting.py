"""Ratcheting on UPDATE: only what a change makes worse is denied.

The objects are the HTTPRoute and Gateway of real UPDATE reviews captured from
kube-apiserver, changed as a user or a controller changes them: a label write, a
finalizer added, a finalizer removed once ``deletionTimestamp`` is set, a spec change
that worsens and one that fixes. Every case runs through the engine and, as the
captured AdmissionReview with its object and oldObject replaced, through the HTTPS
server's ``/validate``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from conftest import REVIEWS, start_https, trusting

from webhook.admission import parse_review
from webhook.certs import CertificateFiles
from webhook.decision import Decision, Mode
from webhook.engine import decide
from webhook.policy.loader import PolicyStore, load_documents
from webhook.runtime import Runtime
from webhook.state.store import ClusterState

REPO = Path(__file__).resolve().parents[1]
CLUSTER = [d for d in yaml.safe_load_all((REPO / "tests/scenarios/_shared/cluster.yaml").read_text()) if d]
POLICY = """
apiVersion: routewarden.dev/v1alpha1
kind: TenancyPolicy
metadata: {name: fidelity}
spec:
  match:
    gateways: [{namespace: infra, name: shared}]
  hostnames:
    required: true
    unique: true
    allowed:
      - namespaces: {selector: {matchLabels: {team: apples}}}
        patterns: [apples.example.com, "*.apples.example.com"]
      - namespaces: {selector: {matchLabels: {team: bananas}}}
        patterns: ["*.bananas.example.com"]
  gatewayGuardrails:
    allowedClasses: [{namespaces: {names: [infra]}, classNames: [istio]}]
    listenerDomains: [example.com]
"""
POLICIES = load_documents([("fidelity.yaml", POLICY)])


def captured(name: str) -> dict[str, Any]:
    return json.loads((REVIEWS / f"{name}.json").read_text())


ROUTE_REVIEW = captured("httproute-update-add-hostname.validate")
GATEWAY_REVIEW = captured("gateway-update-allowedroutes-all.validate")
ROUTE = ROUTE_REVIEW["request"]["oldObject"]  # apples/route on infra/shared sectionName http
GATEWAY = GATEWAY_REVIEW["request"]["oldObject"]  # infra/shared, class cilium


def narrowed_gateway() -> dict[str, Any]:
    """The platform team narrowed listener http to its own namespace and opened a listener for apples."""
    gateway = copy.deepcopy(GATEWAY)
    http, https = gateway["spec"]["listeners"]
    http["allowedRoutes"] = {"namespaces": {"from": "Same"}}
    apples = {"name": "apples", "port": 8080, "protocol": "HTTP", "hostname": "*.apples.example.com",
              "allowedRoutes": {"namespaces": {"from": "Selector", "selector": {"matchLabels": {"team": "apples"}}}}}
    gateway["spec"]["listeners"] = [http, https, apples]
    return gateway


# The captured Gateway's certificate lives in namespace apples.
CERTIFICATE_GRANT = {
    "apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
    "metadata": {"name": "gateway-certificates", "namespace": "apples"},
    "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "infra"}],
             "to": [{"group": "", "kind": "Secret", "name": "apples-tls"}]},
}


def state_with(*objects: dict[str, Any]) -> ClusterState:
    """The shared cluster with the captured objects in it (as the informer would hold them)."""
    keep = [o for o in CLUSTER if (o["kind"], o["metadata"]["name"]) != ("Gateway", "shared")]
    return ClusterState.from_objects([*keep, CERTIFICATE_GRANT, *objects])


Change = Callable[[dict[str, Any]], None]


def changed(obj: dict[str, Any], *changes: Change) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    for change in changes:
        change(out)
    return out


def label(obj: dict[str, Any]) -> None:
    obj["metadata"].setdefault("labels", {})["argocd.argoproj.io/instance"] = "fruits"


def add_finalizer(obj: dict[str, Any]) -> None:
    obj["metadata"]["finalizers"] = ["example.com/cleanup"]


def deleting(obj: dict[str, Any]) -> None:
    obj["metadata"]["deletionTimestamp"] = "2026-11-22T22:00:00Z"
    obj["metadata"]["deletionGracePeriodSeconds"] = 0


def remove_finalizers(obj: dict[str, Any]) -> None:
    obj["metadata"].pop("finalizers", None)


def section(*names: str) -> Change:
    def change(obj: dict[str, Any]) -> None:
        ref = obj["spec"]["parentRefs"][0]
        obj["spec"]["parentRefs"] = [{**ref, "sectionName": name} for name in names]
    return change


def hostnames(*names: str) -> Change:
    def change(obj: dict[str, Any]) -> None:
        obj["spec"]["hostnames"] = list(names)
    return change


def backend(namespace: str) -> Change:
    def change(obj: dict[str, Any]) -> None:
        obj["spec"]["rules"][0]["backendRefs"].append(
            {"group": "", "kind": "Service", "name": "echo", "namespace": namespace, "port": 8080, "weight": 1})
    return change


def listener(**fields: Any) -> Change:
    def change(obj: dict[str, Any]) -> None:
        obj["spec"]["listeners"].append({"port": 9090, "protocol": "HTTP", **fields})
    return change


def gateway_class(name: str) -> Change:
    def change(obj: dict[str, Any]) -> None:
        obj["spec"]["gatewayClassName"] = name
    return change


FINALIZED = changed(ROUTE, add_finalizer)
PARTIAL = changed(ROUTE, section("apples", "http"), hostnames("www.apples.example.com"))
CLAIMING = changed(ROUTE, hostnames("shop.bananas.example.com", "www.apples.example.com"))
GW_FINALIZED = changed(GATEWAY, add_finalizer)

NARROWED = "narrowed"  # the cluster after the platform narrowed the Gateway under the route
TIGHTENED = "tightened"  # the cluster as it is; the guardrail (class istio only) came later

# (id, cluster, old, new, result, denied rule ids, rule ids that must be among the warnings)
CASES = [
    ("route-label-write", NARROWED, ROUTE, changed(ROUTE, label),
     "warn", set(), {"attachment/NotAllowedByListeners"}),
    ("route-finalizer-add", NARROWED, ROUTE, FINALIZED,
     "warn", set(), {"attachment/NotAllowedByListeners"}),
    ("route-finalizer-removal-while-deleting", NARROWED, changed(FINALIZED, deleting),
     changed(FINALIZED, deleting, remove_finalizers), "warn", set(), {"attachment/NotAllowedByListeners"}),
    ("route-spec-change-keeping-the-refusal", NARROWED, ROUTE, changed(ROUTE, hostnames("apples.example.com", "a.apples.example.com")),
     "warn", set(), {"attachment/NotAllowedByListeners"}),
    ("route-moved-to-another-parent-that-refuses-it", NARROWED, ROUTE, changed(ROUTE, section("https")),
     "deny", {"attachment/NotAllowedByListeners"}, set()),
    ("route-worsened-by-an-ungranted-backend", NARROWED, ROUTE, changed(ROUTE, backend("cherries")),
     "deny", {"references/RefNotPermitted"}, {"attachment/NotAllowedByListeners"}),
    ("route-fixed-by-moving-to-a-listener-that-admits-it", NARROWED, ROUTE,
     changed(ROUTE, section("apples"), hostnames("www.apples.example.com")), "allow", set(), set()),
    ("route-attaching-elsewhere-only-warns-for-the-refusing-parent", NARROWED, ROUTE, PARTIAL,
     "warn", set(), {"attachment/NotAllowedByListeners"}),
    ("route-losing-the-parent-it-attached-to-is-worse", NARROWED, PARTIAL, changed(PARTIAL, section("http")),
     "deny", {"attachment/NotAllowedByListeners"}, set()),
    ("route-reordering-its-hostnames-keeps-their-findings", TIGHTENED, CLAIMING,
     changed(CLAIMING, hostnames("www.apples.example.com", "apples.example.com", "shop.bananas.example.com")),
     "warn", set(), {"hostnames/HostnameConflict", "hostnames/HostnameNotAllowed"}),
    ("route-adding-a-bad-hostname-before-an-old-one", TIGHTENED, CLAIMING,
     changed(CLAIMING, hostnames("pear.bananas.example.com", "shop.bananas.example.com")),
     "deny", {"hostnames/HostnameNotAllowed"}, {"hostnames/HostnameConflict"}),
    ("gateway-label-write", TIGHTENED, GATEWAY, changed(GATEWAY, label),
     "warn", set(), {"gateway/GatewayClassNotAllowed"}),
    ("gateway-finalizer-removal-while-deleting", TIGHTENED, changed(GW_FINALIZED, deleting),
     changed(GW_FINALIZED, deleting, remove_finalizers), "warn", set(), {"gateway/GatewayClassNotAllowed"}),
    ("gateway-worsened-by-a-listener-without-hostname", TIGHTENED, GATEWAY, changed(GATEWAY, listener(name="any")),
     "deny", {"gateway/ListenerHostnameNotAllowed"}, {"gateway/GatewayClassNotAllowed"}),
    ("gateway-moved-to-another-refused-class", TIGHTENED, GATEWAY, changed(GATEWAY, gateway_class("kong")),
     "deny", {"gateway/GatewayClassNotAllowed"}, set()),
    ("gateway-fixed-by-an-allowed-class", TIGHTENED, GATEWAY, changed(GATEWAY, gateway_class("istio")),
     "allow", set(), set()),
]
IDS = [c[0] for c in CASES]


def state_for(name: str, old: dict[str, Any]) -> ClusterState:
    """The cluster with the object as it was before the UPDATE (as the informer holds it)."""
    gateway = narrowed_gateway() if name == NARROWED else GATEWAY
    if old["kind"] == "Gateway":
        gateway = old
    objects = [gateway] if old["kind"] == "Gateway" else [gateway, old]
    return state_with(*objects)


def review(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The captured UPDATE review of the object's kind, carrying these objects."""
    body = copy.deepcopy(ROUTE_REVIEW if new["kind"] == "HTTPRoute" else GATEWAY_REVIEW)
    body["request"]["oldObject"], body["request"]["object"] = old, new
    return body


def expected_verdict(decision: Decision) -> str:
    return "deny" if not decision.allowed else ("warn" if decision.warnings else "allow")


@pytest.mark.parametrize(("case", "name", "old", "new", "result", "denied", "warned"), CASES, ids=IDS)
def test_an_update_is_judged_by_what_it_changes(
    case: str, name: str, old: dict, new: dict, result: str, denied: set[str], warned: set[str]
) -> None:
    """Findings the object already had only warn; new or worsened findings deny."""
    decision = decide(parse_review(review(old, new)), POLICIES, state_for(name, old))
    assert expected_verdict(decision) == result, decision
    assert {v.rule for v in decision.denials} == denied
    assert warned <= {v.rule for v in decision.violations if v.mode is Mode.WARN}, decision.warnings
    assert all(any(w.startswith(rule + ":") for w in decision.warnings) for rule in warned), decision.warnings


@pytest.mark.parametrize(("case", "name", "old", "new", "result", "denied", "warned"), CASES, ids=IDS)
async def test_the_https_server_judges_an_update_by_what_it_changes(
    case: str, name: str, old: dict, new: dict, result: str, denied: set[str], warned: set[str],
    certificates: CertificateFiles,
) -> None:
    """/validate answers the real UPDATE review as the engine does."""
    runtime = Runtime(policies=PolicyStore(initial=POLICIES), state=state_for(name, old), require_sync=False)
    server, runner = await start_https(runtime, certificates)
    try:
        async with aiohttp.ClientSession() as session, session.post(
            f"{server.url}/validate?timeout=5s", json=review(old, new), ssl=trusting(certificates)
        ) as resp:
            assert resp.status == 200, await resp.text()
            answer = (await resp.json())["response"]
    finally:
        await runner.cleanup()
    verdict = "deny" if not answer["allowed"] else ("warn" if answer.get("warnings") else "allow")
    assert verdict == result, answer
    if denied:
        assert answer["status"]["code"] == 403
        assert answer["status"]["reason"] in {r.rpartition("/")[2] for r in denied}, answer["status"]
    for rule in warned:
        assert any(w.startswith(rule + ":") for w in answer.get("warnings", [])), answer.get("warnings")


def test_a_finding_kept_by_an_update_says_why_it_only_warns() -> None:
    """The warning tells the user the finding predates the change."""
    decision = decide(parse_review(review(ROUTE, changed(ROUTE, backend("apples")))), POLICIES,
                      state_for(NARROWED, ROUTE))
    (finding,) = decision.violations
    assert finding.mode is Mode.WARN and "had this before this UPDATE" in finding.message


def test_a_metadata_only_update_says_so() -> None:
    """A label write is allowed because it changes nothing a rule reads, and the warning says that."""
    decision = decide(parse_review(review(ROUTE, changed(ROUTE, label))), POLICIES, state_for(NARROWED, ROUTE))
    assert decision.allowed and all("changes only metadata" in v.message for v in decision.violations)


def test_a_create_of_the_same_object_is_still_denied() -> None:
    """Ratcheting is for UPDATEs: the object as new is denied as before."""
    body = review(ROUTE, changed(ROUTE, label))
    body["request"]["operation"], body["request"]["oldObject"] = "CREATE", None
    decision = decide(parse_review(body), POLICIES, state_for(NARROWED, ROUTE))
    assert not decision.allowed and decision.reason == "NotAllowedByListeners"


def test_a_metadata_only_update_of_an_unreadable_object_is_allowed_with_a_warning() -> None:
    """Fields of the wrong type cannot be checked, but a label write on such an object is not refused for them."""
    broken = changed(ROUTE, hostnames())
    broken["spec"]["hostnames"] = "not-a-list"
    decision = decide(parse_review(review(broken, changed(broken, label))), POLICIES, state_for(NARROWED, ROUTE))
    assert decision.allowed and any("cannot be checked" in w for w in decision.warnings)
    spec_change = changed(broken, backend("apples"))
    refused = decide(parse_review(review(broken, spec_change)), POLICIES, state_for(NARROWED, ROUTE))
    assert not refused.allowed and refused.code == 400
