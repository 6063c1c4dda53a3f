"""The mutation diff prunes what both sides share, and the patch stays what jsonpatch makes of the whole."""

from __future__ import annotations

import copy
import datetime

import jsonpatch
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webhook.engine import _copy, _without_unchanged

# JSON as orjson decodes it, with the values jsonpatch must tell apart (1, 1.0, true, -0.0).
LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([0.0, -0.0, 1.0, 2.5]),
                   st.sampled_from(["", "a", "b"]))
KEYS = st.sampled_from(["a", "b", "c", "d", "e"])
JSON = st.recursive(LEAVES, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                    st.dictionaries(KEYS, inner, max_size=5)), max_leaves=25)
DOCUMENTS = st.dictionaries(KEYS, JSON, max_size=5)


@st.composite
def edited(draw: st.DrawFn) -> tuple[dict, dict]:
    """A document and a copy with some members replaced, added or removed, at any depth."""
    original = draw(DOCUMENTS)
    changed = copy.deepcopy(original)
    for _ in range(draw(st.integers(0, 4))):
        target = changed
        while isinstance(target, dict) and target and draw(st.booleans()):
            nested = target[draw(st.sampled_from(sorted(target)))]
            if not isinstance(nested, dict):
                break
            target = nested
        if draw(st.booleans()) and target:
            del target[draw(st.sampled_from(sorted(target)))]
        else:
            target[draw(KEYS)] = draw(JSON)
    return original, changed


@settings(max_examples=300, deadline=None)
@given(edited())
def test_pruning_shared_members_leaves_the_patch_unchanged(documents):
    """The operations, and their order, are those jsonpatch makes of the whole documents."""
    original, changed = documents
    assert jsonpatch.make_patch(*_without_unchanged(original, changed)).patch == \
        jsonpatch.make_patch(original, changed).patch


def test_members_that_differ_only_in_json_type_are_kept():
    """1, 1.0 and true are equal in Python but not in JSON: each change still gets its operation."""
    original = {"spec": {"a": 1, "b": 0.0, "c": True, "d": {"x": 1}}}
    changed = {"spec": {"a": 1.0, "b": -0.0, "c": 1, "d": {"x": 1}}}
    pruned = _without_unchanged(original, changed)
    assert pruned == ({"spec": {"a": 1, "b": 0.0, "c": True}}, {"spec": {"a": 1.0, "b": -0.0, "c": 1}})
    assert len(jsonpatch.make_patch(*pruned).patch) == 3


def same_types(a: object, b: object) -> bool:
    """Equal, and of the same type at every node (1, 1.0 and true differ)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same_types(a[k], b[k]) for k in a)  # type: ignore[index]
    if isinstance(a, list):
        return len(a) == len(b) and all(same_types(x, y) for x, y in zip(a, b))  # type: ignore[arg-type]
    return repr(a) == repr(b)  # -0.0 is not 0.0


@settings(max_examples=300, deadline=None)
@given(DOCUMENTS)
def test_the_mutators_copy_is_an_equal_and_separate_document(document: dict) -> None:
    """The copy mutators change equals the object, type for type, and shares no container with it."""
    copied = _copy(document)
    assert same_types(copied, document)
    containers = {id(node) for node in _containers(document)}
    assert not containers & {id(node) for node in _containers(copied)}


def _containers(node: object) -> list[object]:
    if isinstance(node, dict):
        return [node, *(c for v in node.values() for c in _containers(v))]
    if isinstance(node, list):
        return [node, *(c for v in node for c in _containers(v))]
    return []


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize("value", [
    datetime.date(2026, 1, 1), datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC), float("nan"), float("inf"),
    1 << 70, (1, 2), {1, 2}, b"bytes", {1: "non-string key"}, nested(300),
], ids=["date", "datetime", "nan", "inf", "big-int", "tuple", "set", "bytes", "int-key", "deep"])
def test_a_document_that_is_not_plain_json_is_copied_as_deepcopy_would(value: object) -> None:
    """Manifests read from YAML may hold what JSON cannot: the copy keeps each value and type."""
    document = {"metadata": {"name": "x"}, "spec": {"value": value}}
    copied = _copy(document)
    assert copied is not document and copied["spec"] is not document["spec"]
    assert repr(copied) == repr(copy.deepcopy(document))
