"""Every captured kube-apiserver request gets a valid AdmissionReview back, over real HTTPS."""

from __future__ import annotations

import base64
import json
from typing import Any

import aiohttp
import pytest
from conftest import REVIEWS, HttpsServer, admission_fixtures, trusting

FIXTURES = admission_fixtures()


def webhook_path(entry: dict[str, Any]) -> str:
    """The path our server serves for this capture.

    The capture used one extra, temporary configuration at ``/validate-v1only`` for the
    v1beta1-to-v1 conversion case; for us it is a validating call like any other.
    """
    return f"/{entry['webhook']}"


@pytest.fixture
async def session(https_server: HttpsServer) -> Any:
    connector = aiohttp.TCPConnector(ssl=trusting(https_server.files), limit=1)
    async with aiohttp.ClientSession(https_server.url, connector=connector) as session:
        yield session


async def test_every_fixture_is_answered_with_an_admission_review_echoing_its_uid(
    session: aiohttp.ClientSession,
) -> None:
    """All captured requests, sent as the apiserver sent them, get HTTP 200 and their uid back."""
    assert len(FIXTURES) >= 39
    for name, entry in FIXTURES:
        body = (REVIEWS / entry["raw_file"]).read_bytes()
        request = json.loads(body)
        headers = {k: v for k, v in entry["request_headers"].items() if k != "Accept-Encoding"}
        async with session.post(f"{webhook_path(entry)}?{entry['query']}", data=body, headers=headers) as resp:
            assert resp.status == 200, name
            assert resp.content_type == "application/json", name
            review = await resp.json()
        assert review["apiVersion"] == request["apiVersion"] == "admission.k8s.io/v1", name
        assert review["kind"] == "AdmissionReview", name
        response = review["response"]
        assert response["uid"] == request["request"]["uid"], name
        assert isinstance(response["allowed"], bool), name
        assert set(response) <= {"uid", "allowed", "status", "warnings", "patch", "patchType"}, name
        if "patch" in response:
            assert entry["webhook"] == "mutate" and response["patchType"] == "JSONPatch", name
            assert isinstance(json.loads(base64.b64decode(response["patch"])), list), name
        if not response["allowed"]:
            assert response["status"]["code"] >= 400 and response["status"]["message"], name


async def test_a_dry_run_is_answered_exactly_like_the_real_request(session: aiohttp.ClientSession) -> None:
    """The dry-run capture and a copy with dryRun false get the same answer, uid aside."""
    body = json.loads((REVIEWS / "httproute-create-dryrun.validate.json").read_text())
    assert body["request"]["dryRun"] is True
    real = json.loads(json.dumps(body))
    real["request"]["dryRun"] = False
    answers = []
    for review in (body, real):
        async with session.post("/validate?timeout=5s", json=review) as resp:
            assert resp.status == 200
            answers.append((await resp.json())["response"])
    assert answers[0] == answers[1]


@pytest.mark.parametrize("name", [n for n, e in FIXTURES if e["operation"] == "DELETE"])
async def test_delete_requests_carry_no_object_and_are_still_answered(
    session: aiohttp.ClientSession, name: str
) -> None:
    """DELETE reviews have object null and oldObject set; both webhooks answer them."""
    entry = dict(FIXTURES)[name]
    body = json.loads((REVIEWS / entry["file"]).read_text())
    assert body["request"]["object"] is None and body["request"]["oldObject"]
    async with session.post(webhook_path(entry), json=body) as resp:
        assert resp.status == 200
        assert (await resp.json())["response"]["uid"] == body["request"]["uid"]
