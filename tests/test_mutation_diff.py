"""The mutation diff prunes what both sides share, and the patch stays what jsonpatch makes of the whole."""

from __future__ import annotations

import copy

import jsonpatch
from hypothesis import given, settings
from hypothesis import strategies as st

from webhook.engine import _without_unchanged

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
