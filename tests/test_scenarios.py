"""Scenario folders (policies + cluster + resources + expected results), run two ways.

Each folder under ``tests/scenarios`` is a ``routewarden test`` suite. It runs through
the engine directly, and every object in it is also sent as a real AdmissionReview over
HTTPS to a server holding the same policies and cluster view: both must give the answer
the folder expects.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import aiohttp
import pytest
from conftest import start_https, trusting

from webhook.certs import CertificateFiles
from webhook.policy.loader import PolicyStore, load_paths
from webhook.policytest import find_tests, load_objects, load_test, ref_of, run_test
from webhook.runtime import Runtime
from webhook.state.store import ClusterState

SCENARIOS = Path(__file__).parent / "scenarios"
CASES = find_tests(SCENARIOS)


def test_there_are_scenarios_for_every_background_mistake() -> None:
    """The suite is not silently empty: each rule area has a scenario folder."""
    names = {case.name for case in CASES}
    assert {"listeners", "references", "hostnames", "guardrails", "blast-radius", "gitops-order"} <= names


@pytest.mark.parametrize("folder", CASES, ids=[c.name for c in CASES])
def test_scenario_through_the_engine(folder: Path) -> None:
    """Every expected result of the folder holds when the engine evaluates it."""
    outcomes = list(run_test(load_test(folder)))
    assert outcomes, "a scenario must expect something"
    failed = [o for o in outcomes if not o.passed]
    assert not failed, "\n".join(f"{o.resource} ({o.operation}): {'; '.join(o.details)}" for o in failed)


def _review(obj: dict | None, *, operation: str, old: dict | None = None, user: dict | None = None) -> dict:
    subject = obj if obj is not None else old
    group, _, version = subject["apiVersion"].rpartition("/")
    gvk = {"group": group, "version": version, "kind": subject["kind"]}
    meta = subject.get("metadata") or {}
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()), "kind": gvk, "requestKind": gvk,
            "resource": {"group": group, "version": version, "resource": subject["kind"].lower() + "s"},
            "name": meta.get("name", ""), "namespace": meta.get("namespace", ""), "operation": operation,
            "userInfo": user or {"username": "routewarden:offline-check", "groups": ["system:authenticated"]},
            "object": obj, "oldObject": old, "dryRun": False,
            "options": {"kind": f"{operation.title()}Options", "apiVersion": "meta.k8s.io/v1"},
        },
    }


@pytest.mark.parametrize("folder", CASES, ids=[c.name for c in CASES])
async def test_scenario_through_the_https_server(folder: Path, certificates: CertificateFiles) -> None:
    """The server answers each object of the folder as the folder expects (validating webhook)."""
    case = load_test(folder)
    resources = load_objects(case.resources)
    state = ClusterState.from_objects(load_objects(case.cluster) + resources)
    runtime = Runtime(policies=PolicyStore(initial=load_paths(case.policies)), state=state, require_sync=False)
    reviews = {(ref_of(o), "CREATE"): _review(o, operation="CREATE") for o in resources}
    for req in case.requests:
        subject = req.get("object") or req.get("oldObject")
        reviews[(ref_of(subject), req.get("operation", "CREATE"))] = _review(
            req.get("object"), operation=req.get("operation", "CREATE"), old=req.get("oldObject"), user=req.get("user"))
    server, runner = await start_https(runtime, certificates)
    try:
        async with aiohttp.ClientSession() as session:
            for expected in case.results:
                key = (expected["resource"], expected.get("operation", "CREATE"))
                review = reviews[key]
                async with session.post(f"{server.url}/validate?timeout=10s", json=review,
                                        ssl=trusting(certificates)) as resp:
                    assert resp.status == 200, await resp.text()
                    answer = (await resp.json())["response"]
                assert answer["uid"] == review["request"]["uid"]
                verdict = "deny" if not answer["allowed"] else ("warn" if answer.get("warnings") else "allow")
                assert verdict == expected["result"], f"{key}: {json.dumps(answer)[:500]}"
                if verdict == "deny":
                    fired = {r.rpartition('/')[2] for r in expected.get("rules", [])}
                    assert answer["status"]["reason"] in fired, answer["status"]
                    assert answer["status"]["code"] == 403
    finally:
        await runner.cleanup()
