"""AdmissionReview ``admission.k8s.io/v1``: parse the envelope, build the response.

Two error families are kept apart on purpose:

* :class:`ReviewError` -- the HTTP request is not a usable AdmissionReview (not JSON,
  not an AdmissionReview, no uid, an unsupported apiVersion, a body over the limit).
  The server answers with HTTP 4xx and a reason. kube-apiserver then treats the call
  as failed and applies the webhook's ``failurePolicy``: nothing is silently allowed
  or denied on our word when we could not even read the question.
* A *denial* -- the review is well formed and the object breaks a rule (or its fields
  have types the API does not allow). That is an HTTP 200 AdmissionReview with
  ``allowed: false`` and a status the user sees in ``kubectl`` or Argo CD / Flux.

The server reads a body with :func:`decode_review`: orjson decodes the JSON (the same
decoder, so the same JSON is accepted), then msgspec converts the envelope into typed
structs in C, reading only the fields the engine uses; ``object`` and ``oldObject`` stay
the dicts orjson made. A body that does not convert cleanly is judged again by
:func:`parse_review`, the field-by-field checks, so every bad body gets the same status
and reason as before, and a body that converts gets the same request.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, Literal

import msgspec
import orjson

from .decision import Decision

API_VERSION = "admission.k8s.io/v1"
SUPPORTED_API_VERSIONS = frozenset({API_VERSION})
Operation = Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]
OPERATIONS = frozenset({"CREATE", "UPDATE", "DELETE", "CONNECT"})


class ReviewError(Exception):
    """The HTTP body is not an AdmissionReview we can answer: answered with HTTP ``status``."""

    MAX_REASON = 512  # a reason may quote a bad value; keep answers and log lines bounded

    def __init__(self, status: int, reason: str, *, uid: str | None = None) -> None:
        if len(reason) > self.MAX_REASON:
            reason = reason[: self.MAX_REASON - 3] + "..."
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.uid = uid


class GroupVersionKind(msgspec.Struct, frozen=True):
    group: str
    version: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


class UserInfo(msgspec.Struct, frozen=True):
    username: str = ""
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = msgspec.field(default_factory=dict)

    @property
    def service_account(self) -> tuple[str, str] | None:
        """``(namespace, name)`` when the user is a ServiceAccount."""
        prefix = "system:serviceaccount:"
        if self.username.startswith(prefix):
            ns, _, name = self.username[len(prefix):].partition(":")
            if ns and name:
                return ns, name
        return None


class AdmissionRequest(msgspec.Struct, frozen=True):
    """The parts of ``request`` the engine reads. ``object``/``old_object`` are the raw dicts."""

    uid: str
    kind: GroupVersionKind
    operation: str
    name: str = ""
    namespace: str = ""
    request_kind: GroupVersionKind | None = None
    sub_resource: str = ""
    user: UserInfo = msgspec.field(default_factory=UserInfo)
    object: dict[str, Any] | None = None
    old_object: dict[str, Any] | None = None
    dry_run: bool = False
    options: dict[str, Any] | None = None
    review_api_version: str = API_VERSION

    @property
    def subject(self) -> dict[str, Any]:
        """The object the request is about: ``object``, or ``oldObject`` on DELETE."""
        return self.object if self.object is not None else (self.old_object or {})


def _str(value: Any, where: str, *, required: bool = False, uid: str | None = None) -> str:
    if value is None:
        if required:
            raise ReviewError(400, f"{where} is required", uid=uid)
        return ""
    if not isinstance(value, str):
        raise ReviewError(400, f"{where} must be a string, not {type(value).__name__}", uid=uid)
    return value


def _gvk(value: Any, where: str, uid: str) -> GroupVersionKind:
    if not isinstance(value, dict):
        raise ReviewError(400, f"{where} must be an object with group, version and kind", uid=uid)
    return GroupVersionKind(
        group=_str(value.get("group"), f"{where}.group", uid=uid),
        version=_str(value.get("version"), f"{where}.version", required=True, uid=uid),
        kind=_str(value.get("kind"), f"{where}.kind", required=True, uid=uid),
    )


def _user(value: Any, uid: str) -> UserInfo:
    if value is None:
        return UserInfo()
    if not isinstance(value, dict):
        raise ReviewError(400, "request.userInfo must be an object", uid=uid)
    groups = value.get("groups") or []
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise ReviewError(400, "request.userInfo.groups must be a list of strings", uid=uid)
    extra_raw = value.get("extra") or {}
    if not isinstance(extra_raw, dict):
        raise ReviewError(400, "request.userInfo.extra must be an object", uid=uid)
    extra: dict[str, tuple[str, ...]] = {}
    for key, vals in extra_raw.items():
        if not isinstance(vals, list) or not all(isinstance(v, str) for v in vals):
            raise ReviewError(400, f"request.userInfo.extra[{key!r}] must be a list of strings", uid=uid)
        extra[key] = tuple(vals)
    return UserInfo(
        username=_str(value.get("username"), "request.userInfo.username", uid=uid),
        uid=_str(value.get("uid"), "request.userInfo.uid", uid=uid),
        groups=tuple(groups),
        extra=extra,
    )


def _object(value: Any, where: str, uid: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ReviewError(400, f"{where} must be an object or null", uid=uid)
    return value


def decode_json(body: bytes) -> Any:
    """Parse JSON strictly (UTF-8 only); raises :class:`ReviewError` 400 otherwise."""
    try:
        return orjson.loads(body)
    except (orjson.JSONDecodeError, TypeError, ValueError, RecursionError) as exc:
        raise ReviewError(400, f"body is not valid JSON: {exc}") from None


def parse_review(document: Any) -> AdmissionRequest:
    """Validate the envelope of a decoded AdmissionReview and return its request."""
    if not isinstance(document, dict):
        raise ReviewError(400, "body is not a JSON object (expected an AdmissionReview)")
    kind = document.get("kind")
    if kind != "AdmissionReview":
        raise ReviewError(400, f"kind must be AdmissionReview, not {kind!r}")
    api_version = document.get("apiVersion")
    if not isinstance(api_version, str) or api_version not in SUPPORTED_API_VERSIONS:  # a list is unhashable
        raise ReviewError(
            400,
            f"unsupported apiVersion {api_version!r}: this webhook speaks {API_VERSION} "
            "(set admissionReviewVersions: [v1] in the webhook configuration)",
        )
    request = document.get("request")
    if not isinstance(request, dict):
        raise ReviewError(400, "AdmissionReview has no request object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise ReviewError(400, "request.uid is missing or not a non-empty string")
    operation = _str(request.get("operation"), "request.operation", required=True, uid=uid)
    if operation not in OPERATIONS:
        raise ReviewError(400, f"request.operation {operation!r} is not one of {sorted(OPERATIONS)}", uid=uid)
    obj = _object(request.get("object"), "request.object", uid)
    old = _object(request.get("oldObject"), "request.oldObject", uid)
    if operation in ("CREATE", "UPDATE") and obj is None:
        raise ReviewError(400, f"request.object is required for {operation}", uid=uid)
    if operation == "DELETE" and old is None and obj is None:
        raise ReviewError(400, "request.oldObject is required for DELETE", uid=uid)
    dry_run = request.get("dryRun", False)
    if dry_run is None:
        dry_run = False
    if not isinstance(dry_run, bool):
        raise ReviewError(400, "request.dryRun must be a boolean", uid=uid)
    options = request.get("options")
    if options is not None and not isinstance(options, dict):
        raise ReviewError(400, "request.options must be an object", uid=uid)
    request_kind = request.get("requestKind")
    return AdmissionRequest(
        uid=uid,
        kind=_gvk(request.get("kind"), "request.kind", uid),
        operation=operation,
        name=_str(request.get("name"), "request.name", uid=uid),
        namespace=_str(request.get("namespace"), "request.namespace", uid=uid),
        request_kind=_gvk(request_kind, "request.requestKind", uid) if request_kind is not None else None,
        sub_resource=_str(request.get("subResource"), "request.subResource", uid=uid),
        user=_user(request.get("userInfo"), uid),
        object=obj,
        old_object=old,
        dry_run=dry_run,
        options=options,
        review_api_version=api_version,
    )


# ---------------------------------------------------------------------------- typed decoding
class _Request(msgspec.Struct, frozen=True, rename="camel"):
    """``request`` as msgspec converts it: the fields :class:`AdmissionRequest` keeps, no
    more (``resource``, ``requestResource`` and the rest are not read). Types are strict:
    a null where a string belongs, a missing ``kind.group``, or anything else unusual is
    not converted here, and :func:`parse_review` judges it."""

    uid: str
    kind: GroupVersionKind
    operation: Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]
    name: str = ""
    namespace: str = ""
    request_kind: GroupVersionKind | None = None
    sub_resource: str = ""
    user_info: UserInfo = msgspec.field(default_factory=UserInfo)
    object: Any = None  # checked below: a dict is kept as it is, not copied
    old_object: Any = None
    dry_run: bool = False
    options: Any = None


class _Review(msgspec.Struct, frozen=True, rename="camel"):
    kind: Literal["AdmissionReview"]
    api_version: Literal[API_VERSION]
    request: _Request


def _converted(document: Any) -> AdmissionRequest | None:
    """The request of a JSON-decoded review when it is well formed, else None (then
    :func:`parse_review` says why, or accepts what the strict types did not)."""
    try:
        review = msgspec.convert(document, _Review)
    except msgspec.ValidationError:
        return None
    r = review.request
    obj, old, options = r.object, r.old_object, r.options
    if (
        not r.uid
        or (obj is not None and not isinstance(obj, dict))
        or (old is not None and not isinstance(old, dict))
        or (options is not None and not isinstance(options, dict))
        or (obj is None and (r.operation in ("CREATE", "UPDATE") or (r.operation == "DELETE" and old is None)))
    ):
        return None
    return AdmissionRequest(r.uid, r.kind, r.operation, r.name, r.namespace, r.request_kind, r.sub_resource,
                            r.user_info, obj, old, r.dry_run, options, review.api_version)


def decode_review(body: bytes) -> AdmissionRequest:
    """The AdmissionRequest in an HTTP body, or :class:`ReviewError` (400) naming the problem
    and, when it can be read, the request's uid.

    The same answer as :func:`decode_json` followed by :func:`parse_review`, faster for
    well-formed reviews (see the module docstring)."""
    document = decode_json(body)
    request = _converted(document)
    if request is not None:
        return request
    try:
        return parse_review(document)
    except ReviewError as exc:
        exc.uid = exc.uid or peek_uid(document)
        raise


def peek_uid(document: Any) -> str | None:
    """The request uid if it can be read, for echoing it even on a rejected envelope."""
    if isinstance(document, dict):
        request = document.get("request")
        if isinstance(request, dict) and isinstance(request.get("uid"), str):
            return request["uid"]
    return None


def encode_patch(patch: tuple[dict[str, Any], ...] | list[dict[str, Any]]) -> str:
    return base64.b64encode(orjson.dumps(list(patch))).decode("ascii")


def build_response(request: AdmissionRequest, decision: Decision) -> dict[str, Any]:
    """The AdmissionReview to send back for ``request``."""
    response: dict[str, Any] = {"uid": request.uid, "allowed": decision.allowed}
    if not decision.allowed:
        response["status"] = {
            "status": "Failure",
            "code": decision.code if decision.code >= 400 else 403,
            "reason": decision.reason or "Forbidden",
            "message": decision.message,
        }
    if decision.warnings:
        # kube-apiserver truncates long warnings and drops them past 4 KiB in total;
        # keep each readable and the list bounded.
        response["warnings"] = [w if len(w) <= 1024 else w[:1021] + "..." for w in decision.warnings[:20]]
    if decision.allowed and decision.patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = encode_patch(decision.patch)
    return {"apiVersion": request.review_api_version, "kind": "AdmissionReview", "response": response}


_ALLOWED_HEAD = b'{"apiVersion":"' + API_VERSION.encode() + b'","kind":"AdmissionReview","response":{"uid":'


def encode_response(request: AdmissionRequest, decision: Decision) -> bytes:
    """``orjson.dumps(build_response(request, decision))``, the bytes the server sends.

    The usual answer, allowed with no warning and no patch, is written directly, without
    the three dicts :func:`build_response` would make for it."""
    if decision.allowed and not decision.warnings and not decision.patch and request.review_api_version == API_VERSION:
        return _ALLOWED_HEAD + orjson.dumps(request.uid) + b',"allowed":true}}'
    return orjson.dumps(build_response(request, decision))
