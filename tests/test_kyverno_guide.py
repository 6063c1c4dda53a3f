"""docs/migrating-from-kyverno.md is exact: its ServicePolicy, run by the engine over its own
cluster and generated Service, gives the values its Kyverno policy gave; listeners would
publish the wildcard instead."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
import yaml

from webhook.engine import decide
from webhook.mutation.service import HOSTNAME_RECORD
from webhook.offline import synthesize_request
from webhook.policy.loader import load_documents
from webhook.state.store import ClusterState

GUIDE = Path(__file__).resolve().parents[1] / "docs/migrating-from-kyverno.md"


def blocks() -> list[list[dict[str, Any]]]:
    """Every ```yaml block of the guide, as its documents."""
    text = GUIDE.read_text()
    return [[d for d in yaml.safe_load_all(b) if d] for b in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)]


def the(kind: str) -> list[dict[str, Any]]:
    """The first block holding a document of ``kind``."""
    return next(b for b in blocks() if any(d.get("kind") == kind for d in b))


def merge(base: Any, patch: Any) -> Any:
    """A strategic merge patch of maps (all the Kyverno policy uses)."""
    if not isinstance(base, dict) or not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(base)
    for key, value in patch.items():
        out[key] = merge(base.get(key), value)
    return out


def kyverno_result(service: dict[str, Any]) -> dict[str, Any]:
    [policy] = the("ClusterPolicy")
    [rule] = policy["spec"]["rules"]
    [match] = rule["match"]["any"]
    meta = service["metadata"]
    assert match["resources"]["name"] == meta["name"] and meta["namespace"] in match["resources"]["namespaces"]
    return merge(service, rule["mutate"]["patchStrategicMerge"])


def routewarden_result(service: dict[str, Any], policy_doc: dict[str, Any]) -> dict[str, Any]:
    cluster = [d for d in the("Gateway") if d["kind"] != "Service"]
    policies = load_documents([("guide.yaml", yaml.safe_dump(policy_doc))])
    decision = decide(synthesize_request(service), policies, ClusterState.from_objects(cluster), webhook="mutate")
    assert decision.allowed and decision.warnings == ()
    return jsonpatch.apply_patch(copy.deepcopy(service), list(decision.patch))


def service() -> dict[str, Any]:
    [svc] = [d for b in blocks() for d in b if d.get("kind") == "Service"]
    return svc


def test_the_guides_service_policy_gives_what_its_kyverno_policy_gave() -> None:
    """Annotations (hostname included) and loadBalancerClass are equal, value for value; routewarden adds
    only its record of the hostname it computed (so that it can take back its own value)."""
    [policy] = the("ServicePolicy")
    ours, theirs = routewarden_result(service(), policy), kyverno_result(service())
    record = ours["metadata"]["annotations"].pop(HOSTNAME_RECORD)
    hostname = "external-dns.alpha.kubernetes.io/hostname"
    assert record == f"{hostname}={theirs['metadata']['annotations'][hostname]}"
    assert ours["metadata"]["annotations"] == theirs["metadata"]["annotations"]
    assert ours["spec"]["loadBalancerClass"] == theirs["spec"]["loadBalancerClass"] == "service.k8s.aws/nlb"
    assert ours == theirs


@pytest.mark.parametrize(
    "sources, hostname",
    [
        (["routes"], "gitops-mycluster-0.cloud.ogenki.io,grafana-mycluster-0.cloud.ogenki.io"),
        (["listeners"], "*.cloud.ogenki.io"),
        (["listeners", "routes"],
         "*.cloud.ogenki.io,gitops-mycluster-0.cloud.ogenki.io,grafana-mycluster-0.cloud.ogenki.io"),
    ],
)
def test_listeners_publish_the_wildcard_and_routes_the_concrete_names(sources: list[str], hostname: str) -> None:
    """What the guide says of each source, on its own example."""
    [policy] = copy.deepcopy(the("ServicePolicy"))
    policy["spec"]["service"]["externalDNS"]["sources"] = sources
    annotations = routewarden_result(service(), policy)["metadata"]["annotations"]
    assert annotations["external-dns.alpha.kubernetes.io/hostname"] == hostname


def test_the_guide_names_the_external_dns_route_sources() -> None:
    """The alternative of letting external-dns read the routes is in the guide."""
    text = GUIDE.read_text()
    assert "--source=gateway-httproute" in text and "sources: [routes]" in text
