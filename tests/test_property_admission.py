"""Property tests: any body, however wrong, gets a valid AdmissionReview or a 4xx with a reason.

Bodies start from the 39 captured kube-apiserver reviews and are mutated: values of the
wrong type in any field, fields removed (metadata included) or added, huge strings and
arrays, deep nesting, then, as bytes, truncated, made invalid UTF-8, or given duplicate
keys. The invariants are those of ``fuzz/oracle.py``; they are checked twice: directly on
``parse_review`` + ``engine.decide`` (validate and mutate, the shipped policies and the
dev cluster view), and through the real aiohttp app.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from conftest import REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(REPO / "fuzz"))
import oracle

from webhook.admission import ReviewError, _converted, decode_json, decode_review, parse_review, peek_uid
from webhook.policy.loader import PolicyStore
from webhook.runtime import Runtime
from webhook.server import create_app

POLICIES = oracle.shipped_policies()
STATE = oracle.dev_state()
CAPTURES = [json.loads(body) for body in oracle.captured_bodies()]
JSON_HEADERS = {"Content-Type": "application/json"}


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for i in range(depth):
        value = [value] if i % 2 else {"a": value}
    return value


SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
JSON_VALUES = st.recursive(SCALARS, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
                           max_leaves=12)
ODD_VALUES = st.one_of(
    JSON_VALUES,
    st.sampled_from([1 << 16, 1 << 20]).map(lambda n: "x" * n),  # huge strings
    st.sampled_from([1_000, 100_000]).map(lambda n: [None] * n),  # huge arrays
    st.sampled_from([10, 200, 900, 1_100]).map(nested),  # deep, some past the decoder's limit
    st.sampled_from(["CREATE", "DELETE", "Gateway", "HTTPRoute", "Service", "gateway.networking.k8s.io",
                     "*.apples.example.com", "admission.k8s.io/v1", ""]),
)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node[:20]):
            out += paths(value, (*prefix, index))
    return out


def parent_of(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        doc = doc[part]
    return doc


@st.composite
def mutated_documents(draw: st.DrawFn) -> Any:
    """A captured review with one to four edits anywhere in it."""
    doc = json.loads(json.dumps(draw(st.sampled_from(CAPTURES))))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(paths(doc)))
        action = draw(st.sampled_from(["replace", "delete", "add-field"]))
        if not path:
            doc = draw(ODD_VALUES) if action == "replace" else doc
            continue
        parent = parent_of(doc, path)
        if action == "replace":
            parent[path[-1]] = draw(ODD_VALUES)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent[path[-1]], dict):
            parent[path[-1]][draw(st.sampled_from(["x-unknown", "metadata", "spec", "uid", "kind"]))] = draw(ODD_VALUES)
    return doc


def duplicate_key(body: bytes, value: bytes) -> bytes:
    """The same body with ``"uid"`` or ``"request"`` given twice (the parser keeps the last)."""
    for key in (b'"uid":', b'"request":'):
        at = body.find(key)
        if at > 0:
            return body[:at] + key + value + b"," + body[at:]
    return body


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """Mutated documents as bytes, sometimes damaged after serialising."""
    doc = draw(mutated_documents())
    try:
        body = json.dumps(doc).encode()
    except (RecursionError, ValueError):
        body = b"[" * 5000
    damage = draw(st.sampled_from(["none", "none", "truncate", "invalid-utf8", "duplicate-key", "bom", "trailing"]))
    if damage == "truncate":
        body = body[: draw(st.integers(0, max(len(body) - 1, 0)))]
    elif damage == "invalid-utf8":
        at = draw(st.integers(0, len(body)))
        body = body[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80\x80"])) + body[at:]
    elif damage == "duplicate-key":
        body = duplicate_key(body, json.dumps(draw(JSON_VALUES)).encode())
    elif damage == "bom":
        body = b"\xef\xbb\xbf" + body
    elif damage == "trailing":
        body += b" {}"
    return body


@pytest.mark.parametrize("webhook", ["validate", "mutate"])
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(body=bodies())
def test_the_engine_answers_any_mutated_review_correctly(webhook: str, body: bytes) -> None:
    """parse_review + decide: a valid AdmissionReview or a 4xx Status; uid echoed; patches apply."""
    status, document = oracle.answer(body, webhook=webhook, policies=POLICIES, state=STATE)  # type: ignore[arg-type]
    oracle.check(body, status, document)


@pytest.fixture
async def shipped_client(aiohttp_client: Any) -> Any:
    """The app the server builds, with the shipped policies and the dev cluster view."""
    runtime = Runtime(policies=PolicyStore(initial=POLICIES), state=STATE, require_sync=False)
    return await aiohttp_client(create_app(runtime, policy_interval=None))


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(body=bodies(), webhook=st.sampled_from(["validate", "mutate"]))
async def test_the_server_answers_any_mutated_review_correctly(shipped_client: Any, body: bytes, webhook: str) -> None:
    """Through the aiohttp app: never a 500, and each answer keeps the oracle's invariants."""
    resp = await shipped_client.post(f"/{webhook}?timeout=10s", data=body, headers=JSON_HEADERS)
    document = await resp.json()
    oracle.check(body, resp.status, document)


def without(doc: dict[str, Any], *path: str) -> bytes:
    copy = json.loads(json.dumps(doc))
    parent = copy
    for part in path[:-1]:
        parent = parent.get(part) or {}
    if isinstance(parent, dict):
        parent.pop(path[-1], None)
    return json.dumps(copy).encode()


@pytest.mark.parametrize("webhook", ["validate", "mutate"])
@pytest.mark.parametrize("index", range(len(CAPTURES)))
@pytest.mark.parametrize("field", ["object", "oldObject"])
def test_every_capture_without_metadata_is_answered(webhook: str, index: int, field: str) -> None:
    """Each captured review with its object's (or old object's) metadata removed is still answered."""
    body = without(CAPTURES[index], "request", field, "metadata")
    status, document = oracle.answer(body, webhook=webhook, policies=POLICIES, state=STATE)  # type: ignore[arg-type]
    oracle.check(body, status, document)


def capture(name_part: str) -> dict[str, Any]:
    return next(c for c in CAPTURES if name_part == (c["request"]["kind"]["kind"], c["request"]["operation"]))


def service_update_with_old_spec(value: Any) -> bytes:
    doc = json.loads(json.dumps(capture(("Service", "UPDATE"))))  # type: ignore[arg-type]
    doc["request"]["oldObject"]["spec"] = value
    doc["request"]["object"]["spec"].pop("loadBalancerClass", None)
    return json.dumps(doc).encode()


def with_object(kind: tuple[str, str], obj: Any) -> bytes:
    doc = json.loads(json.dumps(capture(kind)))  # type: ignore[arg-type]
    doc["request"]["object"] = obj
    return json.dumps(doc).encode()


def with_top(key: str, value: Any) -> bytes:
    doc = json.loads(json.dumps(CAPTURES[0]))
    doc[key] = value
    return json.dumps(doc).encode()


REGRESSIONS = [
    # Found by fuzzing: each was an exception (a 500, or an InternalError answer) before its fix.
    ("apiVersion-a-list", "validate", with_top("apiVersion", ["admission.k8s.io/v1"])),
    ("apiVersion-an-object", "mutate", with_top("apiVersion", {"v": 1})),
    ("object-nested-900-deep", "mutate",
     with_object(("Service", "CREATE"), {**capture(("Service", "CREATE"))["request"]["object"], "x": nested(900)})),
    ("old-spec-a-string", "mutate", service_update_with_old_spec("spec")),
]


@pytest.mark.parametrize(("webhook", "body"), [r[1:] for r in REGRESSIONS], ids=[r[0] for r in REGRESSIONS])
async def test_inputs_that_once_crashed_are_answered(shipped_client: Any, webhook: str, body: bytes) -> None:
    """Each input the fuzzer found gets a correct answer through the app, not a 500 or an InternalError."""
    resp = await shipped_client.post(f"/{webhook}", data=body, headers=JSON_HEADERS)
    oracle.check(body, resp.status, await resp.json())


# ------------------------------------------------------------- the typed decoder
def field_checks(body: bytes) -> tuple[Any, ...]:
    """What the field-by-field checks make of a body: the request, or the error's status, reason and uid."""
    document: Any = None
    try:
        document = decode_json(body)
        return ("request", parse_review(document))
    except ReviewError as exc:
        return ("error", exc.status, exc.reason, exc.uid or peek_uid(document))


def typed_decoder(body: bytes) -> tuple[Any, ...]:
    try:
        return ("request", decode_review(body))
    except ReviewError as exc:
        return ("error", exc.status, exc.reason, exc.uid)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(body=bodies())
def test_the_typed_decoder_reads_any_body_as_the_field_checks_do(body: bytes) -> None:
    """decode_review gives the same request, or the same status, reason and uid, as decode_json + parse_review."""
    assert typed_decoder(body) == field_checks(body)


def test_every_captured_review_takes_the_typed_path() -> None:
    """The 39 real reviews convert without falling back to the field checks, into the same request."""
    for body in oracle.captured_bodies():
        document = decode_json(body)
        converted = _converted(document)  # None would mean: judged by the field checks instead
        assert converted is not None and converted == parse_review(document)


def edited(change: Any) -> bytes:
    """The route CREATE capture with ``change`` applied to its request."""
    document = json.loads(json.dumps(capture(("HTTPRoute", "CREATE"))))
    change(document["request"])
    return json.dumps(document).encode()


LENIENT = {
    # What the strict types do not convert but the field checks accept (or refuse with their own words).
    "name null": lambda r: r.update(name=None),
    "subResource null": lambda r: r.update(subResource=None),
    "dryRun null": lambda r: r.update(dryRun=None),
    "dryRun a number": lambda r: r.update(dryRun=1),
    "userInfo null": lambda r: r.update(userInfo=None),
    "groups null": lambda r: r["userInfo"].update(groups=None),
    "groups zero": lambda r: r["userInfo"].update(groups=0),
    "groups an empty object": lambda r: r["userInfo"].update(groups={}),
    "extra null": lambda r: r["userInfo"].update(extra=None),
    "extra with a number": lambda r: r["userInfo"].update(extra={"k": [1]}),
    "kind without group": lambda r: r["kind"].pop("group"),
    "kind.group null": lambda r: r["kind"].update(group=None),
    "requestKind null": lambda r: r.update(requestKind=None),
    "requestKind a list": lambda r: r.update(requestKind=[]),
    "uid empty": lambda r: r.update(uid=""),
    "object a list": lambda r: r.update(object=[]),
    "object missing on CREATE": lambda r: r.pop("object"),
    "options a string": lambda r: r.update(options="x"),
    "operation lower case": lambda r: r.update(operation="create"),
    "DELETE with neither object": lambda r: r.update(operation="DELETE", object=None, oldObject=None),
    "DELETE with only the object": lambda r: r.update(operation="DELETE", oldObject=None),
    "apiVersion in the request": lambda r: r.update(apiVersion="admission.k8s.io/v1beta1"),
}


@pytest.mark.parametrize("change", LENIENT.values(), ids=LENIENT.keys())
def test_what_the_strict_types_refuse_is_judged_by_the_field_checks(change: Any) -> None:
    """Each odd but possible envelope gets exactly the field checks' answer."""
    body = edited(change)
    assert typed_decoder(body) == field_checks(body)
