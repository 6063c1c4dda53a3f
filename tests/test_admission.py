"""AdmissionReview responses: uid echo, denial status, warnings and JSON Patch encoding."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import jsonpatch
import msgspec
import orjson
import pytest
from conftest import review_body
from hypothesis import given, settings
from hypothesis import strategies as st

from webhook.admission import build_response, decode_json, encode_response, parse_review
from webhook.decision import Decision, Mode, Violation, allowed, from_violations


# An independent RFC 6902 applier (RFC 6901 pointers), so the check does not use the
# library that made the patch.
def _tokens(pointer: str) -> list[str]:
    if pointer == "":
        return []
    assert pointer.startswith("/"), pointer
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _parent(doc: Any, pointer: str) -> tuple[Any, str]:
    *path, last = _tokens(pointer)
    for token in path:
        doc = doc[int(token)] if isinstance(doc, list) else doc[token]
    return doc, last


def _get(doc: Any, pointer: str) -> Any:
    for token in _tokens(pointer):
        doc = doc[int(token)] if isinstance(doc, list) else doc[token]
    return doc


def _add(doc: Any, pointer: str, value: Any) -> None:
    parent, last = _parent(doc, pointer)
    if isinstance(parent, list):
        parent.insert(len(parent) if last == "-" else int(last), value)
    else:
        parent[last] = value


def _remove(doc: Any, pointer: str) -> Any:
    parent, last = _parent(doc, pointer)
    return parent.pop(int(last)) if isinstance(parent, list) else parent.pop(last)


def apply_patch(document: Any, patch: list[dict[str, Any]]) -> Any:
    doc = copy.deepcopy(document)
    for op in patch:
        kind, path = op["op"], op["path"]
        if kind == "add":
            _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            _remove(doc, path)
            _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "move":
            _add(doc, path, _remove(doc, op["from"]))
        elif kind == "copy":
            _add(doc, path, copy.deepcopy(_get(doc, op["from"])))
        elif kind == "test":
            assert _get(doc, path) == op["value"]
        else:
            raise AssertionError(f"unknown op {kind}")
    return doc


def generated_service_request() -> Any:
    return parse_review(decode_json(review_body("service-create-generated-loadbalancer.mutate")))


def test_an_allowed_review_echoes_uid_and_envelope() -> None:
    """The response carries the request's uid and the request's apiVersion and kind."""
    request = generated_service_request()
    review = build_response(request, allowed())
    assert review["apiVersion"] == "admission.k8s.io/v1"
    assert review["kind"] == "AdmissionReview"
    assert review["response"] == {"uid": request.uid, "allowed": True}


def test_a_denial_carries_a_status_with_every_problem() -> None:
    """A denial is allowed:false with code 403, the first violation's reason and all messages."""
    request = generated_service_request()
    decision = from_violations([
        Violation("attachment/NotAllowedByListeners", "NotAllowedByListeners", "listener http refuses apples"),
        Violation("hostname/Hijack", "HostnameConflict", "www.example.com belongs to bananas"),
    ])
    response = build_response(request, decision)["response"]
    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    assert response["status"]["reason"] == "NotAllowedByListeners"
    assert "listener http refuses apples" in response["status"]["message"]
    assert "www.example.com belongs to bananas" in response["status"]["message"]
    assert "patch" not in response


def test_warnings_are_bounded_for_the_apiserver() -> None:
    """Long warnings are cut to 1 KiB and at most 20 are sent."""
    request = generated_service_request()
    decision = Decision(allowed=True, warnings=tuple("x" * 5000 for _ in range(30)))
    warnings = build_response(request, decision)["response"]["warnings"]
    assert len(warnings) == 20
    assert all(len(w) == 1024 and w.endswith("...") for w in warnings)


def test_warn_mode_violations_become_warnings_not_denials() -> None:
    """A violation in warn mode admits the object and tells the user why."""
    request = generated_service_request()
    violation = Violation("hostname/Required", "HostnameRequired", "no hostnames", mode=Mode.WARN)
    response = build_response(request, from_violations([violation]))["response"]
    assert response["allowed"] is True
    assert response["warnings"] == ["hostname/Required: HostnameRequired: no hostnames"]


# Annotation keys with "/" and "~" must be escaped as ~1 and ~0 in the JSON Pointer.
PATCH_CASES = {
    "add annotations with slash and tilde": lambda svc: svc["metadata"]["annotations"].update({
        "service.beta.kubernetes.io/aws-load-balancer-type": "external",
        "example.com/odd~key": "tilde",
        "a~1b/c~0d": "already-escaped-looking",
    }),
    "replace an annotation": lambda svc: svc["metadata"]["annotations"].update(
        {"external-dns.alpha.kubernetes.io/hostname": "shared.example.com"}),
    "set loadBalancerClass": lambda svc: svc["spec"].update({"loadBalancerClass": "service.k8s.aws/nlb"}),
    "remove an annotation": lambda svc: svc["metadata"]["annotations"].pop(
        "service.beta.kubernetes.io/aws-load-balancer-scheme"),
    "add annotations to an object without any": lambda svc: svc["metadata"].update(
        {"annotations": {"x/~y": "1"}}) if svc["metadata"].pop("annotations") else None,
}


@pytest.mark.parametrize("change", PATCH_CASES.values(), ids=PATCH_CASES.keys())
def test_the_returned_patch_turns_the_original_into_the_mutated_object(change: Any) -> None:
    """Decoding the base64 JSONPatch and applying it to the original yields the mutated object."""
    request = generated_service_request()
    original = request.object
    mutated = copy.deepcopy(original)
    change(mutated)
    patch = tuple(jsonpatch.make_patch(original, mutated).patch)
    response = build_response(request, Decision(allowed=True, patch=patch))["response"]
    assert response["patchType"] == "JSONPatch"
    operations = json.loads(base64.b64decode(response["patch"], validate=True))
    assert apply_patch(original, operations) == mutated
    assert apply_patch(original, operations) != original


def test_no_patch_is_sent_on_a_denial() -> None:
    """A denied request never carries a patch, even if the decision had one."""
    request = generated_service_request()
    decision = Decision(allowed=False, code=403, reason="Forbidden", message="no",
                        patch=({"op": "add", "path": "/metadata/labels", "value": {}},))
    response = build_response(request, decision)["response"]
    assert "patch" not in response and "patchType" not in response


def test_the_independent_applier_understands_escaped_pointers() -> None:
    """The test's own applier resolves ~1 to '/' and ~0 to '~' (RFC 6901)."""
    doc = {"a/b": {"c~d": 1}}
    assert apply_patch(doc, [{"op": "replace", "path": "/a~1b/c~0d", "value": 2}]) == {"a/b": {"c~d": 2}}


def test_a_reason_quoting_a_huge_value_is_bounded() -> None:
    """An envelope error quotes the bad value, but never more than a bounded message."""
    from webhook.admission import ReviewError, parse_review

    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
              "request": {"uid": "u", "operation": "X" * 1_000_000}}
    with pytest.raises(ReviewError) as info:
        parse_review(review)
    assert len(info.value.reason) <= ReviewError.MAX_REASON and info.value.reason.endswith("...")
    assert info.value.uid == "u"


DECISIONS = [
    allowed(),
    allowed(warnings=("careful",)),
    allowed(patch=({"op": "add", "path": "/metadata/labels", "value": {}},)),
    Decision(allowed=False, code=403, reason="Forbidden", message="no"),
    Decision(allowed=False, code=400, reason="BadRequest", message="bad"),
]


@settings(max_examples=200, deadline=None)
@given(uid=st.text(min_size=1), decision=st.sampled_from(DECISIONS))
def test_the_sent_bytes_are_the_built_response(uid: str, decision: Decision) -> None:
    """encode_response writes exactly orjson.dumps(build_response(...)), whatever the uid holds."""
    request = msgspec.structs.replace(generated_service_request(), uid=uid)
    assert encode_response(request, decision) == orjson.dumps(build_response(request, decision))
