"""What a correct answer to any request body looks like, checked without HTTP.

Shared by the coverage-guided fuzzer (``fuzz_admission.py``) and the property tests
(``tests/test_property_admission.py``). :func:`answer` runs the server's own pieces in the
server's order (``decode_review``, ``engine.decide``, ``build_response``)
and :func:`check` states the invariants every answer must keep, whatever the body:

* the answer is an AdmissionReview (HTTP 200) or a ``metav1.Status`` with a 4xx and a
  reason, never a 5xx or an exception;
* an AdmissionReview echoes ``request.uid`` and its ``apiVersion``; a 4xx names the uid
  whenever the body let it be read;
* a returned patch is a JSON Patch that applies cleanly to the object it came with;
* the engine never fails while deciding (no ``InternalError`` denial, no "could not
  compute defaults" warning): a crash the server would catch is still a finding here.

A violation raises :class:`InvariantBroken`, which both harnesses treat as a finding.
"""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any, Literal

import jsonpatch
import orjson

from webhook.admission import ReviewError, build_response, decode_review, peek_uid
from webhook.engine import decide
from webhook.handlers import MUTATE_INTERNAL_ERROR, status_document
from webhook.policy.loader import load_paths
from webhook.policy.model import PolicySet
from webhook.state.manifests import load_manifests, state_from_manifests
from webhook.state.store import ClusterState

REPO = Path(__file__).resolve().parents[1]
REVIEWS = REPO.parent / "shared" / "admission-reviews"
Webhook = Literal["validate", "mutate"]
RESPONSE_KEYS = frozenset({"uid", "allowed", "status", "warnings", "patch", "patchType"})


class InvariantBroken(AssertionError):
    """An answer that breaks the contract in the module docstring."""


def shipped_policies() -> PolicySet:
    """The policies the project ships (``policies/``), as the dev server loads them."""
    return load_paths([REPO / "policies"])


def dev_state() -> ClusterState:
    """The offline cluster view of ``policies/dev-state``."""
    return state_from_manifests(load_manifests([REPO / "policies" / "dev-state"]))


def captured_bodies() -> list[bytes]:
    """The raw bodies kube-apiserver sent, byte for byte."""
    return sorted(p.read_bytes() for p in (REVIEWS / "raw").glob("*.json"))


def answer(body: bytes, *, webhook: Webhook, policies: PolicySet, state: ClusterState) -> tuple[int, dict[str, Any]]:
    """``(HTTP status, JSON document)`` the server sends for ``body`` (engine errors propagate)."""
    try:
        request = decode_review(body)
    except ReviewError as exc:
        return exc.status, status_document(exc.status, exc.reason, uid=exc.uid)
    decision = decide(request, policies, state, webhook=webhook)
    return 200, build_response(request, decision)


def _fail(message: str) -> None:
    raise InvariantBroken(message)


def readable(body: bytes) -> Any:
    """The body as the server decodes it, or None when it is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def check(body: bytes, status: int, document: Any) -> None:
    """Raise :class:`InvariantBroken` unless ``(status, document)`` is a valid answer to ``body``."""
    sent = readable(body)
    uid = peek_uid(sent)
    if not isinstance(document, dict):
        _fail(f"answer is not a JSON object: {type(document).__name__}")
    if status == 200:
        _check_review(sent, document)
    elif 400 <= status < 500:
        if document.get("kind") != "Status" or document.get("code") != status:
            _fail(f"a {status} without a matching metav1.Status: {document!r:.300}")
        if not isinstance(document.get("message"), str) or not document["message"]:
            _fail(f"a {status} without a reason")
        if uid and document.get("details", {}).get("uid") != uid:
            _fail(f"a {status} did not echo the readable uid {uid!r}")
    else:
        _fail(f"HTTP {status}: {document!r:.300}")


def _check_review(sent: Any, document: dict[str, Any]) -> None:
    request = sent["request"]
    if document.get("kind") != "AdmissionReview" or document.get("apiVersion") != sent["apiVersion"]:
        _fail(f"not an AdmissionReview of the request's apiVersion: {document!r:.300}")
    response = document.get("response")
    if not isinstance(response, dict) or not set(response) <= RESPONSE_KEYS:
        _fail(f"malformed response: {response!r:.300}")
    if response.get("uid") != request["uid"]:
        _fail(f"uid not echoed: sent {request['uid']!r}, got {response.get('uid')!r}")
    if not isinstance(response.get("allowed"), bool):
        _fail("response.allowed is not a boolean")
    if not response["allowed"]:
        status = response.get("status") or {}
        if not (isinstance(status.get("code"), int) and status["code"] >= 400 and isinstance(status.get("message"), str)):
            _fail(f"a denial without a status code and message: {status!r:.300}")
        if status.get("reason") == "InternalError":
            _fail("the engine failed while deciding (InternalError)")
    if MUTATE_INTERNAL_ERROR in (response.get("warnings") or ()):
        _fail("the engine failed while mutating")
    for warning in response.get("warnings") or ():
        if not isinstance(warning, str):
            _fail("a warning that is not a string")
    if "patch" in response:
        _check_patch(request.get("object"), response)


def _check_patch(obj: Any, response: dict[str, Any]) -> None:
    if response.get("patchType") != "JSONPatch" or not response["allowed"]:
        _fail("a patch without patchType JSONPatch, or on a denial")
    operations = orjson.loads(base64.b64decode(response["patch"], validate=True))
    if not isinstance(operations, list) or not operations:
        _fail("a patch that is not a non-empty list of operations")
    try:
        jsonpatch.apply_patch(copy.deepcopy(obj), operations)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError, IndexError) as exc:
        _fail(f"the patch does not apply to the object it came with: {type(exc).__name__}: {exc}")
