"""Bad requests get a 4xx Status with a reason; failures while deciding get a deliberate answer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp import web
from conftest import review_body

from webhook.admission import AdmissionRequest
from webhook.decision import Decision
from webhook.policy.loader import PolicyStore
from webhook.runtime import Runtime
from webhook.server import MAX_BODY_BYTES, create_app
from webhook.state.store import ClusterState
from webhook.telemetry import Telemetry

JSON = {"Content-Type": "application/json"}
VALID = json.loads(review_body("httproute-create.validate"))
UID = VALID["request"]["uid"]


def review(**changes: Any) -> bytes:
    """The captured review with top-level or ``request.*`` keys changed (None deletes)."""
    doc = json.loads(json.dumps(VALID))
    for key, value in changes.items():
        target, field = (doc["request"], key[len("request_"):]) if key.startswith("request_") else (doc, key)
        if value is None:
            target.pop(field, None)
        else:
            target[field] = value
    return json.dumps(doc).encode()


BAD_INPUTS = [
    # id, method, path, headers, body, status, message
    ("text/plain", "POST", "/validate", {"Content-Type": "text/plain"}, review(), 415,
     "Content-Type must be application/json, not 'text/plain'"),
    ("no content type", "POST", "/mutate", {}, review(), 415, "Content-Type must be application/json"),
    ("not json", "POST", "/validate", JSON, b"hello", 400, "body is not valid JSON"),
    ("empty body", "POST", "/validate", JSON, b"", 400, "body is not valid JSON"),
    ("invalid utf-8", "POST", "/validate", JSON, b'{"kind": "\xff"}', 400, "body is not valid JSON"),
    ("nesting bomb", "POST", "/validate", JSON, b"[" * 100_000, 400, "body is not valid JSON"),
    ("json array", "POST", "/validate", JSON, b"[]", 400, "body is not a JSON object"),
    ("wrong kind", "POST", "/validate", JSON, review(kind="Pod"), 400, "kind must be AdmissionReview, not 'Pod'"),
    ("v1beta1 review", "POST", "/mutate", JSON, review(apiVersion="admission.k8s.io/v1beta1"), 400,
     "unsupported apiVersion 'admission.k8s.io/v1beta1'"),
    ("no request", "POST", "/validate", JSON, review(request=None), 400, "AdmissionReview has no request object"),
    ("missing uid", "POST", "/validate", JSON, review(request_uid=None), 400, "request.uid is missing"),
    ("uid not a string", "POST", "/validate", JSON, review(request_uid=7), 400, "request.uid is missing"),
    ("unknown operation", "POST", "/validate", JSON, review(request_operation="PATCH"), 400,
     "request.operation 'PATCH' is not one of"),
    ("create without object", "POST", "/validate", JSON, review(request_object=None), 400,
     "request.object is required for CREATE"),
    ("groups not strings", "POST", "/validate", JSON, review(request_userInfo={"groups": [1]}), 400,
     "request.userInfo.groups must be a list of strings"),
    ("over the size limit", "POST", "/validate", JSON, b" " * (MAX_BODY_BYTES + 1), 413,
     f"exceeds the limit of {MAX_BODY_BYTES} bytes"),
    ("GET on a webhook path", "GET", "/validate", {}, b"", 405, "Method Not Allowed"),
    ("unknown path", "POST", "/admit", JSON, review(), 404, "Not Found"),
]


@pytest.mark.parametrize(("method", "path", "headers", "body", "status", "message"),
                         [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS])
async def test_bad_requests_get_a_4xx_status_with_the_reason(
    client: Any, method: str, path: str, headers: dict[str, str], body: bytes, status: int, message: str
) -> None:
    """Each unreadable request gets its HTTP status and a metav1.Status naming the problem."""
    resp = await client.request(method, path, data=body, headers=headers)
    assert resp.status == status
    document = await resp.json()
    assert document["kind"] == "Status" and document["status"] == "Failure"
    assert document["code"] == status
    assert message in document["message"]


@pytest.mark.parametrize("body", [review(request_operation="PATCH"), review(request_object=None)],
                         ids=["bad operation", "missing object"])
async def test_a_rejected_review_echoes_the_uid_when_it_could_be_read(client: Any, body: bytes) -> None:
    """A 400 for a review whose uid is readable names that uid in the Status details."""
    resp = await client.post("/validate", data=body, headers=JSON)
    assert resp.status == 400
    assert (await resp.json())["details"] == {"uid": UID}


async def test_a_chunked_body_over_the_limit_is_refused_while_reading(client: Any) -> None:
    """Without Content-Length the limit still applies, as the body streams in."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(MAX_BODY_BYTES // (1 << 20) + 2):
            yield b" " * (1 << 20)

    resp = await client.post("/validate", data=chunks(), headers=JSON)
    assert resp.status == 413
    assert "exceeds the limit" in (await resp.json())["message"]


async def test_a_review_near_the_etcd_object_limit_is_accepted(client: Any) -> None:
    """object and oldObject of ~1.5 MiB each (etcd's limit) fit under the body limit."""
    big = "x" * (1536 * 1024 - 4096)
    doc = json.loads(review_body("httproute-update-add-hostname.validate"))
    doc["request"]["object"]["metadata"].setdefault("annotations", {})["big"] = big
    doc["request"]["oldObject"]["metadata"].setdefault("annotations", {})["big"] = big
    body = json.dumps(doc).encode()
    assert len(body) > 3_000_000  # three times aiohttp's default limit
    resp = await client.post("/validate", data=body, headers=JSON)
    assert resp.status == 200
    assert (await resp.json())["response"]["uid"] == doc["request"]["uid"]


async def test_a_charset_parameter_on_the_content_type_is_fine(client: Any) -> None:
    """application/json; charset=utf-8 is still JSON."""
    resp = await client.post("/validate", data=review(), headers={"Content-Type": "application/json; charset=utf-8"})
    assert resp.status == 200


class FailingRuntime(Runtime):
    """A runtime whose engine raises: stands in for a bug in a rule."""

    def review(self, request: AdmissionRequest, *, webhook: str) -> Decision:
        raise RuntimeError("a rule crashed")


class SlowRuntime(Runtime):
    """A runtime whose (synchronous) engine takes ``delay`` seconds."""

    delay = 0.3

    def review(self, request: AdmissionRequest, *, webhook: str) -> Decision:
        time.sleep(self.delay)
        return super().review(request, webhook=webhook)


class RecordingTelemetry(Telemetry):
    """Keeps what the server reports, to check the wiring to telemetry."""

    def __init__(self) -> None:
        super().__init__()
        self.rejected: list[tuple[str, int, str]] = []
        self.finished: list[tuple[str, Any, str | None, Decision]] = []

    def review_rejected(self, *, webhook: str, status: int, reason: str) -> None:
        self.rejected.append((webhook, status, reason))

    @contextlib.contextmanager
    def admission(self, *, webhook: str, request: Any = None, request_id: str | None = None,
                  headers: Any = None) -> Iterator[Any]:
        outer = self

        class Recorder:
            def finish(self, decision: Decision) -> None:
                outer.finished.append((webhook, request.uid, request_id, decision))

        yield Recorder()


def make_client(aiohttp_client: Any, runtime_class: type[Runtime], telemetry: Telemetry | None = None) -> Any:
    runtime = runtime_class(policies=PolicyStore(), state=ClusterState(), require_sync=False,
                            telemetry=telemetry or Telemetry())
    return aiohttp_client(create_app(runtime, policy_interval=None))


async def test_an_engine_exception_on_validate_denies_with_internal_error(aiohttp_client: Any) -> None:
    """A crash while validating answers HTTP 200, allowed:false, code 500 InternalError."""
    client = await make_client(aiohttp_client, FailingRuntime)
    resp = await client.post("/validate", data=review(), headers=JSON)
    assert resp.status == 200
    response = (await resp.json())["response"]
    assert response["uid"] == UID and response["allowed"] is False
    assert response["status"]["code"] == 500 and response["status"]["reason"] == "InternalError"
    assert "a rule crashed" not in response["status"]["message"]  # internals stay in the log


async def test_an_engine_exception_on_mutate_admits_unchanged_with_a_warning(aiohttp_client: Any) -> None:
    """A crash while mutating admits the object with no patch and tells the user why."""
    client = await make_client(aiohttp_client, FailingRuntime)
    body = review_body("service-create-generated-loadbalancer.mutate")
    resp = await client.post("/mutate", data=body, headers=JSON)
    assert resp.status == 200
    response = (await resp.json())["response"]
    assert response["allowed"] is True and "patch" not in response
    assert "internal error" in response["warnings"][0]


async def test_an_engine_exception_is_logged_by_type_and_stack_without_its_message(
    aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The log names RuntimeError and where it happened, but not the message (it may quote object values)."""
    client = await make_client(aiohttp_client, FailingRuntime)
    await client.post("/validate", data=review(), headers=JSON)
    [record] = [r for r in caplog.records if r.getMessage() == "deciding failed"]
    logged = record.fields  # type: ignore[attr-defined]
    assert logged["error"] == "RuntimeError" and logged["stack"][-1].endswith(" in review")
    assert logged["uid"] == UID
    assert "a rule crashed" not in str(logged) and record.exc_info is None


async def test_the_server_keeps_serving_after_an_engine_exception(aiohttp_client: Any) -> None:
    """Errors do not poison the app: health and later reviews are answered."""
    client = await make_client(aiohttp_client, FailingRuntime)
    for _ in range(3):
        assert (await client.post("/validate", data=review(), headers=JSON)).status == 200
    assert (await client.get("/healthz")).status == 200


async def test_rejections_and_decisions_reach_telemetry(aiohttp_client: Any) -> None:
    """4xx are reported with their status; decisions (including internal errors) are finished."""
    telemetry = RecordingTelemetry()
    client = await make_client(aiohttp_client, FailingRuntime, telemetry)
    await client.post("/mutate", data=b"nope", headers=JSON)
    await client.post("/validate", data=review(), headers={**JSON, "Audit-ID": "audit-1"})
    assert telemetry.rejected == [("mutate", 400, "BadRequest")]
    [(webhook, uid, request_id, decision)] = telemetry.finished
    assert (webhook, uid, request_id) == ("validate", UID, "audit-1")
    assert decision.reason == "InternalError"


@pytest.mark.parametrize(("timeout", "status"), [("200ms", 504), ("5s", 200)])
async def test_a_decision_ready_after_the_deadline_is_not_sent(aiohttp_client: Any, timeout: str, status: int) -> None:
    """A 0.3 s decision is answered within ?timeout=5s but becomes a 504 Timeout under 200ms."""
    client = await make_client(aiohttp_client, SlowRuntime)
    resp = await client.post(f"/validate?timeout={timeout}", data=review(), headers=JSON)
    assert resp.status == status
    document = await resp.json()
    if status == 504:
        assert document["kind"] == "Status" and document["reason"] == "Timeout"
        assert document["details"] == {"uid": UID}
    else:
        assert document["response"]["uid"] == UID


async def test_a_body_not_received_before_the_deadline_is_a_408(client: Any) -> None:
    """A client that stalls mid-body is not waited for past ?timeout."""

    async def stalled() -> AsyncIterator[bytes]:
        body = review()
        yield body[:100]
        await asyncio.sleep(0.6)
        yield body[100:]

    started = time.monotonic()
    resp = await client.post("/validate?timeout=300ms", data=stalled(), headers=JSON)
    assert resp.status == 408
    assert "deadline" in (await resp.json())["message"]
    assert time.monotonic() - started < 1.0


async def test_an_unhandled_error_outside_the_engine_is_a_status_not_a_traceback(aiohttp_client: Any) -> None:
    """The last-resort guard turns any other exception into a JSON Status 500."""

    async def broken(request: web.Request) -> web.Response:
        raise KeyError("boom")

    runtime = Runtime(policies=PolicyStore(), state=ClusterState(), require_sync=False)
    app = create_app(runtime, policy_interval=None)
    app.router.add_get("/broken", broken)
    client = await aiohttp_client(app)
    resp = await client.get("/broken")
    assert resp.status == 500
    document = await resp.json()
    assert document["reason"] == "InternalError" and "boom" not in document["message"]
