"""TenancyException: named rules switched off for named objects, until an expiry, with a
reason; every use counted, logged and shown. Everything else keeps applying."""

from __future__ import annotations

import copy
import json
import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from conftest import start_https, trusting

from webhook.certs import CertificateFiles
from webhook.cli import main
from webhook.engine import decide
from webhook.offline import synthesize_request
from webhook.policy.loader import PolicyLoadError, PolicyStore, load_documents, load_paths
from webhook.runtime import Runtime
from webhook.state.manifests import load_manifests
from webhook.state.store import ClusterState

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests/cli/exceptions"
NOW = datetime(2026, 1, 15, tzinfo=UTC)


def manifests() -> dict[str, dict]:
    return {f"{m.obj['kind']}/{m.obj['metadata']['name']}": m.obj for m in load_manifests([FIXTURES / "manifests.yaml"])}


def exception_doc(**changes: Any) -> dict:
    doc = yaml.safe_load((FIXTURES / "exception.yaml").read_text())
    for key, value in changes.items():
        if value is None:
            doc["spec"].pop(key, None)
        else:
            doc["spec"][key] = value
    return doc


def policies(exception: dict | None) -> Any:
    texts = [("policy.yaml", (FIXTURES / "policy.yaml").read_text())]
    if exception is not None:
        texts.append(("exception.yaml", yaml.safe_dump(exception)))
    return load_documents(texts)


def judge(obj: dict, exception: dict | None, *, at: datetime = NOW) -> Any:
    state = ClusterState.from_objects(manifests().values())
    return decide(synthesize_request(obj), policies(exception), state, at=at)


REDIRECT = "HTTPRoute/http-to-https"


@pytest.mark.parametrize(
    "name, change, exception, excepted",
    [
        ("the route the exception names", {}, {}, True),
        ("another route of the namespace", {"name": "catch-all"}, {}, False),
        ("the same name in another namespace", {"namespace": "apples"}, {}, False),
        ("an exception for another rule", {}, {"rules": ["hostnames/HostnameConflict"]}, False),
        ("an exception for another policy", {}, {"policies": ["other"]}, False),
        ("an exception for another kind", {}, {"match": {"kinds": ["GRPCRoute"], "names": ["http-to-https"]}}, False),
        ("a namespace selector that matches", {},
         {"match": {"namespaces": {"selector": {"matchLabels": {"role": "platform"}}}}}, True),
        ("a namespace selector that does not", {},
         {"match": {"namespaces": {"selector": {"matchLabels": {"role": "tenant"}}}}}, False),
        ("an object label selector", {"labels": {"redirect": "true"}},
         {"match": {"namespaces": {"names": ["network"]}, "selector": {"matchLabels": {"redirect": "true"}}}}, True),
        ("an exception without expiry", {}, {"expires": None}, True),
        ("an exception that expired", {}, {"expires": "2026-01-14"}, False),
        ("an exception valid through today", {}, {"expires": "2026-01-15"}, True),
        ("an exception that expired an hour ago", {}, {"expires": "2026-01-14T23:00:00Z"}, False),
    ],
)
def test_an_exception_covers_only_its_rules_and_objects(name: str, change: dict, exception: dict,
                                                        excepted: bool) -> None:
    """HostnameRequired on the catch-all redirect is excepted only where the exception says."""
    obj = copy.deepcopy(manifests()[REDIRECT])
    obj["metadata"].update(change)
    if obj["metadata"]["namespace"] != "network":
        obj["spec"]["parentRefs"][0]["namespace"] = "network"
    decision = judge(obj, exception_doc(**exception))
    assert decision.allowed is excepted, name
    if excepted:
        assert [(u.exception, u.rule) for u in decision.exceptions] == [("catch-all-redirect",
                                                                         "hostnames/HostnameRequired")]
        assert decision.violations == ()
    else:
        assert decision.exceptions == () and decision.rules == ("hostnames/HostnameRequired",)


def test_an_expired_exception_says_so_in_a_warning() -> None:
    """The finding stands and the answer says which exception lapsed."""
    decision = judge(manifests()[REDIRECT], exception_doc(expires="2026-01-01"))
    assert not decision.allowed
    assert ("TenancyException catch-all-redirect expired on 2026-01-01: it no longer excepts "
            "hostnames/HostnameRequired") in decision.warnings


def test_the_guardrails_keep_applying_to_the_excepted_namespace() -> None:
    """The exception names one rule: a Gateway in network is still held to listenerDomains."""
    decision = judge(manifests()["Gateway/rogue"], exception_doc(rules=["hostnames/HostnameRequired"]))
    assert decision.rules == ("gateway/ListenerHostnameNotAllowed",) and not decision.allowed


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"rules": ["hostnames/NoSuchRule"]}, "unknown rule id 'hostnames/NoSuchRule'"),
        ({"rules": []}, "should be non-empty"),
        ({"match": {}}, "spec.match: {} should be non-empty"),
        ({"reason": None}, "'reason' is a required property"),
        ({"expires": "next tuesday"}, "'next tuesday' is not a date (valid through that day, UTC) or an RFC 3339 time"),
        ({"expires": "2026-02-30"}, "not a date or time"),
    ],
)
def test_an_invalid_exception_is_refused_with_its_field(spec: dict, message: str) -> None:
    """Unknown rule ids, an empty match, a missing reason or a bad date are load errors."""
    with pytest.raises(PolicyLoadError) as info:
        policies(exception_doc(**spec))
    assert message in str(info.value)


def test_risky_exceptions_are_flagged_at_load() -> None:
    """Expired, naming a policy that is not loaded, or selecting by object labels everywhere: warned."""
    loaded = policies(exception_doc(expires="2020-01-01", policies=["nope"],
                                    match={"selector": {"matchLabels": {"redirect": "true"}}}))
    text = "\n".join(loaded.warnings)
    assert "expired on 2020-01-01" in text and "TenancyPolicy 'nope'" in text and "restrict match.namespaces" in text


def test_the_example_exception_loads_with_the_example_policies() -> None:
    """policies/examples/tenancyexception-redirect.yaml is valid next to policies/."""
    loaded = load_paths([REPO / "policies", REPO / "policies/examples/tenancyexception-redirect.yaml"])
    assert [e.name for e in loaded.exceptions] == ["catch-all-redirect"]


def test_check_shows_the_exception_used(capsys: pytest.CaptureFixture[str]) -> None:
    """``check``: the redirect is admitted with an "excepted" line; its neighbour and the rogue Gateway are denied."""
    args = ["check", "--policies", str(FIXTURES / "policy.yaml"), "--policies", str(FIXTURES / "exception.yaml"),
            str(FIXTURES / "manifests.yaml")]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "HTTPRoute network/http-to-https: ok" in out
    assert ("excepted: hostnames/HostnameRequired at spec.hostnames by TenancyException catch-all-redirect "
            "(the platform's HTTP to HTTPS redirect answers every hostname on port 80, until 2027-06-30)") in out
    assert "HTTPRoute network/catch-all: DENIED" in out and "Gateway network/rogue: DENIED" in out
    assert main([*args, "-o", "json"]) == 1
    results = {r["name"]: r for r in json.loads(capsys.readouterr().out)["results"]}
    assert results["http-to-https"]["exceptions"] == [{
        "exception": "catch-all-redirect", "rule": "hostnames/HostnameRequired", "policy": "shared-gateway",
        "field": "spec.hostnames", "reason": "the platform's HTTP to HTTPS redirect answers every hostname on port 80",
        "expires": "2027-06-30"}]


def review_body(obj: dict) -> bytes:
    meta = obj["metadata"]
    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": str(uuid.uuid4()), "kind": {"group": "gateway.networking.k8s.io", "version": "v1", "kind": "HTTPRoute"},
        "resource": {"group": "gateway.networking.k8s.io", "version": "v1", "resource": "httproutes"},
        "operation": "CREATE", "namespace": meta["namespace"], "name": meta["name"],
        "userInfo": {"username": "system:serviceaccount:flux-system:kustomize-controller"}, "object": obj}}).encode()


async def test_the_server_counts_and_logs_every_exception_used(
    certificates: CertificateFiles, caplog: pytest.LogCaptureFixture
) -> None:
    """Over HTTPS: the redirect is allowed, the metric counts the use, the decision log names it."""
    store = PolicyStore(initial=policies(exception_doc()))
    runtime = Runtime(policies=store, state=ClusterState.from_objects(manifests().values()), require_sync=False)
    server, runner = await start_https(runtime, certificates)
    try:
        async with aiohttp.ClientSession() as session:
            caplog.set_level(logging.INFO, logger="routewarden.decision")
            for _ in range(2):
                async with session.post(f"{server.url}/validate?timeout=5s", data=review_body(manifests()[REDIRECT]),
                                        headers={"Content-Type": "application/json"},
                                        ssl=trusting(certificates)) as resp:
                    assert (await resp.json())["response"]["allowed"] is True
            async with session.get(f"{server.url}/metrics", ssl=trusting(certificates)) as resp:
                metrics = await resp.text()
    finally:
        await runner.cleanup()
    assert ('routewarden_exceptions_used_total{exception="catch-all-redirect",rule="hostnames/HostnameRequired"} 2.0'
            in metrics)
    lines = [r for r in caplog.records if r.name == "routewarden.decision"]
    assert len(lines) == 2
    assert all(r.fields["exceptions"] == ["catch-all-redirect:hostnames/HostnameRequired"] for r in lines)
