"""HTTP handlers: AdmissionReview in, AdmissionReview (or a Status error) out.

What the server answers, and why:

* **A review it can read** gets HTTP 200 and an AdmissionReview echoing ``request.uid``
  (``allowed``, ``status`` on denial, ``warnings``, a base64 JSONPatch on mutation).
  Dry-run requests are answered exactly like real ones: the user asked what *would*
  happen, and a webhook that waves dry runs through makes ``kubectl --dry-run=server``
  and Argo CD's diff lie.
* **A request it cannot read** (wrong Content-Type 415, body over the limit 413, not
  JSON / not an AdmissionReview / no uid / unsupported apiVersion 400, body not
  received before the deadline 408) gets that 4xx and a ``metav1.Status`` body with
  the reason. kube-apiserver then applies the webhook's ``failurePolicy``: we do not
  allow or deny what we could not read. client-go shows the Status message in its error.
* **An unexpected exception while deciding** (a bug) is logged with its traceback,
  recorded as an ``InternalError`` decision, and answered with HTTP 200 -- never a bare
  500: on ``/validate`` ``allowed: false`` with status code 500 ``InternalError`` (fail
  closed: a rule that could not run must not let a hijack through); on ``/mutate``
  ``allowed: true`` with a warning and no patch (fail open: a missing annotation is
  visible and fixed on the next update, a blocked Service breaks a gateway controller).
* **A decision that is ready only after the deadline** (the engine is synchronous, so it
  cannot be interrupted) is not sent: the apiserver stops waiting at ``?timeout=``, so
  the server answers 504 ``Timeout`` before it, and the ``failurePolicy`` decides.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from aiohttp import web

from .admission import AdmissionRequest, ReviewError, decode_review, encode_response
from .deadline import Deadline, request_timeout
from .decision import Decision, allowed
from .logs import fields
from .runtime import Runtime
from .telemetry import Telemetry

log = logging.getLogger("routewarden.server")

Webhook = Literal["validate", "mutate"]


@dataclass
class Lifecycle:
    """Shutdown state: once ``stopping``, readiness is false and every answer closes its connection.

    ``busy`` counts requests being handled per connection, so shutdown can close idle
    keep-alive connections at once and wait for the others. (aiohttp's own shutdown closes
    every connection first, which drops the rest of a body still arriving.)
    """

    stopping: bool = False
    busy: dict[object, int] = field(default_factory=dict)
    drained: asyncio.Event = field(default_factory=asyncio.Event)

    def begin(self, connection: object) -> None:
        """A request starts on ``connection``; every ``begin`` is followed by one :meth:`end`."""
        self.busy[connection] = self.busy.get(connection, 0) + 1
        self.drained.clear()

    def end(self, connection: object) -> None:
        left = self.busy[connection] - 1
        if left:
            self.busy[connection] = left
            return
        del self.busy[connection]
        if not self.busy:
            self.drained.set()


RUNTIME = web.AppKey("runtime", Runtime)
TELEMETRY = web.AppKey("telemetry", Telemetry)
LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
BODY_LIMIT = web.AppKey("body_limit", int)

# metav1.StatusReason for each HTTP status the server chooses to send.
STATUS_REASONS = {
    400: "BadRequest",
    404: "NotFound",
    405: "MethodNotAllowed",
    408: "Timeout",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    500: "InternalError",
    504: "Timeout",
}


def status_document(code: int, message: str, *, uid: str | None = None) -> dict[str, Any]:
    """A ``metav1.Status`` failure, the error body kube-apiserver's client understands."""
    document: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": STATUS_REASONS.get(code, "Unknown"),
        "code": code,
    }
    if uid:
        document["details"] = {"uid": uid}
    return document


def json_response(document: dict[str, Any], *, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(document), content_type="application/json")


def review_response(request: AdmissionRequest, decision: Decision) -> web.Response:
    """The AdmissionReview answering ``request`` (HTTP 200)."""
    return web.Response(body=encode_response(request, decision), content_type="application/json")


MUTATE_INTERNAL_ERROR = (
    "routewarden could not compute defaults for this object (internal error); it was admitted unchanged"
)


def internal_error(webhook: Webhook) -> Decision:
    """The answer when deciding raised: fail closed on validate, open on mutate (see above)."""
    if webhook == "mutate":
        return allowed(warnings=(MUTATE_INTERNAL_ERROR,))
    return Decision(allowed=False, code=500, reason="InternalError",
                    message="routewarden could not evaluate this request (internal error); see the webhook logs")


def exception_fields(exc: BaseException) -> dict[str, Any]:
    """The exception's type and stack, not its message: messages may quote object values,
    and nothing from an object leaves the process through logs (docs/observability.md)."""
    frames = traceback.extract_tb(exc.__traceback__)
    return {"error": type(exc).__name__, "stack": [f"{f.filename}:{f.lineno} in {f.name}" for f in frames]}


def _request_id(request: web.Request) -> str | None:
    return request.headers.get("X-Request-Id") or request.headers.get("Audit-ID")


async def read_review(request: web.Request, deadline: Deadline) -> AdmissionRequest:
    """The AdmissionRequest in the body, or :class:`ReviewError` with the HTTP status to send."""
    if request.content_type != "application/json":
        raise ReviewError(415, f"Content-Type must be application/json, not {request.content_type!r}")
    limit = request.app[BODY_LIMIT]
    if request.content_length is not None and request.content_length > limit:
        raise ReviewError(413, f"body of {request.content_length} bytes exceeds the limit of {limit} bytes")
    loop = asyncio.get_running_loop()
    remaining = deadline.remaining(loop.time())
    try:
        if remaining > 0 and request.content.is_eof():
            body = await request.read()  # all received already: nothing to wait for, no timer
        else:
            body = await asyncio.wait_for(request.read(), timeout=max(remaining, 0.0))
    except web.HTTPRequestEntityTooLarge:
        raise ReviewError(413, f"body exceeds the limit of {limit} bytes") from None
    except TimeoutError:
        raise ReviewError(408, "body not received before the request's deadline") from None
    return decode_review(body)


def evaluate(runtime: Runtime, telemetry: Telemetry, review: AdmissionRequest, *,
             webhook: Webhook, request_id: str | None, headers: Mapping[str, str]) -> Decision:
    """The engine's decision, or :func:`internal_error` if deciding raised."""
    with telemetry.admission(webhook=webhook, request=review, request_id=request_id, headers=headers) as recorder:
        try:
            decision = runtime.review(review, webhook=webhook)
        except Exception as exc:  # noqa: BLE001 - any bug in a rule becomes the documented answer
            log.error("deciding failed", extra=fields(uid=review.uid, webhook=webhook, kind=review.kind.kind,
                                                      request_id=request_id, **exception_fields(exc)))
            decision = internal_error(webhook)
        recorder.finish(decision)
    return decision


async def admit(request: web.Request, webhook: Webhook) -> web.Response:
    loop = asyncio.get_running_loop()
    deadline = Deadline(loop.time(), request_timeout(request.query.get("timeout")))
    telemetry = request.app[TELEMETRY]
    try:
        review = await read_review(request, deadline)
    except ReviewError as exc:
        telemetry.review_rejected(webhook=webhook, status=exc.status, reason=STATUS_REASONS[exc.status])
        log.info("review rejected", extra=fields(webhook=webhook, status=exc.status, reason=exc.reason, uid=exc.uid))
        return json_response(status_document(exc.status, exc.reason, uid=exc.uid), status=exc.status)
    request_id = _request_id(request)
    try:
        decision = evaluate(request.app[RUNTIME], telemetry, review, webhook=webhook, request_id=request_id,
                            headers=request.headers)
    except Exception as exc:  # noqa: BLE001 - telemetry failed around the decision: still answer
        log.error("recording the decision failed",
                  extra=fields(uid=review.uid, webhook=webhook, **exception_fields(exc)))
        decision = internal_error(webhook)
    if deadline.expired(loop.time()):
        elapsed = loop.time() - deadline.started
        telemetry.review_rejected(webhook=webhook, status=504, reason="Timeout")
        log.warning("decision too late, not sent", extra=fields(uid=review.uid, webhook=webhook,
                                                                elapsed=round(elapsed, 3), timeout=deadline.timeout))
        message = f"decision took {elapsed:.3f}s, past the {deadline.timeout:g}s timeout minus safety margin"
        return json_response(status_document(504, message, uid=review.uid), status=504)
    return review_response(review, decision)


async def validate(request: web.Request) -> web.Response:
    return await admit(request, "validate")


async def mutate(request: web.Request) -> web.Response:
    return await admit(request, "mutate")


async def healthz(request: web.Request) -> web.Response:
    """Alive: the event loop answers. Never depends on the cluster (a restart fixes nothing there)."""
    return web.Response(text="ok\n")


async def readyz(request: web.Request) -> web.Response:
    """Ready once policies are loaded and the cluster view has synced, and not shutting down."""
    ready, problems = request.app[RUNTIME].readiness()
    if request.app[LIFECYCLE].stopping:
        ready, problems = False, [*problems, "shutting down"]
    return json_response({"ready": ready, "problems": problems}, status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    body, content_type = request.app[TELEMETRY].metrics(request.headers.get("Accept"))
    return web.Response(body=body, headers={"Content-Type": content_type})


@web.middleware
async def serve_request(request: web.Request, handler: Any) -> web.StreamResponse:
    """The one middleware, around every request (one layer costs less than two):

    * it counts the requests in flight per connection (:class:`Lifecycle`), and while
      stopping closes each connection after its answer (the apiserver dials again and
      reaches a pod that stays);
    * every error leaves as a ``metav1.Status`` JSON body, never an HTML page or a traceback.
    """
    lifecycle = request.app[LIFECYCLE]
    connection = request.protocol
    lifecycle.begin(connection)
    try:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = json_response(status_document(exc.status, exc.reason), status=exc.status)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the last-resort guard
            log.error("unhandled error", extra=fields(path=request.path, **exception_fields(exc)))
            response = json_response(status_document(500, "internal error; see the webhook logs"), status=500)
        if lifecycle.stopping:
            response.force_close()
        return response
    finally:
        lifecycle.end(connection)
