"""Label selectors behave exactly like Kubernetes' ``metav1.LabelSelectorAsSelector``.

``allowedRoutes.namespaces.selector`` and ``allowedListeners.namespaces.selector`` are plain
``metav1.LabelSelector`` values, so a Gateway controller evaluates them with apimachinery:
matchLabels and every matchExpression are ANDed, ``NotIn`` and ``DoesNotExist`` hold when the
key is absent, an empty selector selects everything, and a malformed selector is an error.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webhook.gatewayapi import LabelSelector, MalformedObject

NS = {"team": "a", "env": "prod", "kubernetes.io/metadata.name": "team-a"}


def expr(key: str, operator: str, *values: str) -> dict[str, Any]:
    out: dict[str, Any] = {"key": key, "operator": operator}
    if values:
        out["values"] = list(values)
    return out


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        # An empty selector ("{}") selects everything (labels.Everything()).
        ({}, {}, True),
        ({}, NS, True),
        ({"matchLabels": {}, "matchExpressions": []}, NS, True),
        # matchLabels: every pair must be present with an equal value (labels.SelectorFromSet).
        ({"matchLabels": {"team": "a"}}, NS, True),
        ({"matchLabels": {"team": "a", "env": "prod"}}, NS, True),
        ({"matchLabels": {"team": "a", "env": "dev"}}, NS, False),
        ({"matchLabels": {"team": "b"}}, NS, False),
        ({"matchLabels": {"owner": "x"}}, NS, False),
        ({"matchLabels": {"team": ""}}, NS, False),
        ({"matchLabels": {"team": ""}}, {"team": ""}, True),
        ({"matchLabels": {"kubernetes.io/metadata.name": "team-a"}}, NS, True),
        # In: the key must be present with one of the values.
        ({"matchExpressions": [expr("env", "In", "prod", "staging")]}, NS, True),
        ({"matchExpressions": [expr("env", "In", "dev")]}, NS, False),
        ({"matchExpressions": [expr("owner", "In", "x")]}, NS, False),
        # NotIn: true when the key is absent, or present with another value.
        ({"matchExpressions": [expr("env", "NotIn", "dev")]}, NS, True),
        ({"matchExpressions": [expr("env", "NotIn", "prod", "dev")]}, NS, False),
        ({"matchExpressions": [expr("owner", "NotIn", "x")]}, NS, True),
        ({"matchExpressions": [expr("owner", "NotIn", "x")]}, {}, True),
        # Exists / DoesNotExist look only at the key, whatever the value (even "").
        ({"matchExpressions": [expr("team", "Exists")]}, NS, True),
        ({"matchExpressions": [expr("team", "Exists")]}, {"team": ""}, True),
        ({"matchExpressions": [expr("owner", "Exists")]}, NS, False),
        ({"matchExpressions": [expr("owner", "DoesNotExist")]}, NS, True),
        ({"matchExpressions": [expr("team", "DoesNotExist")]}, NS, False),
        ({"matchExpressions": [expr("team", "DoesNotExist")]}, {"team": ""}, False),
        # Requirements are ANDed, across matchLabels and matchExpressions.
        ({"matchLabels": {"team": "a"}, "matchExpressions": [expr("env", "In", "prod")]}, NS, True),
        ({"matchLabels": {"team": "a"}, "matchExpressions": [expr("env", "In", "dev")]}, NS, False),
        ({"matchLabels": {"team": "b"}, "matchExpressions": [expr("env", "In", "prod")]}, NS, False),
        ({"matchExpressions": [expr("team", "Exists"), expr("owner", "DoesNotExist")]}, NS, True),
        ({"matchExpressions": [expr("team", "Exists"), expr("env", "NotIn", "prod")]}, NS, False),
        # The same key in matchLabels and an expression: both must hold.
        ({"matchLabels": {"env": "prod"}, "matchExpressions": [expr("env", "NotIn", "prod")]}, NS, False),
        ({"matchLabels": {"env": "prod"}, "matchExpressions": [expr("env", "In", "prod", "dev")]}, NS, True),
    ],
)
def test_a_label_selector_matches_like_kubernetes(selector: dict[str, Any], labels: dict[str, str], expected: bool) -> None:
    """"Routes in namespaces selected by the selector may be used by this Gateway.\""""
    assert LabelSelector.from_dict(selector).matches(labels) is expected


@pytest.mark.parametrize(
    ("selector", "field"),
    [
        # Operators are case-sensitive and limited to the four LabelSelectorOperators.
        ({"matchExpressions": [expr("env", "in", "prod")]}, "selector.matchExpressions[0].operator"),
        ({"matchExpressions": [expr("env", "Gt", "1")]}, "selector.matchExpressions[0].operator"),
        ({"matchExpressions": [expr("env", "Equals", "prod")]}, "selector.matchExpressions[0].operator"),
        ({"matchExpressions": [{"key": "env"}]}, "selector.matchExpressions[0].operator"),
        # In/NotIn need values; Exists/DoesNotExist take none.
        ({"matchExpressions": [expr("env", "In")]}, "selector.matchExpressions[0].values"),
        ({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": []}]}, "selector.matchExpressions[0].values"),
        ({"matchExpressions": [expr("env", "Exists", "prod")]}, "selector.matchExpressions[0].values"),
        ({"matchExpressions": [expr("env", "DoesNotExist", "x")]}, "selector.matchExpressions[0].values"),
        # Keys must be qualified names, values valid label values.
        ({"matchExpressions": [{"operator": "Exists"}]}, "selector.matchExpressions[0].key"),
        ({"matchExpressions": [expr("", "Exists")]}, "selector.matchExpressions[0].key"),
        ({"matchExpressions": [expr("bad key", "Exists")]}, "selector.matchExpressions[0].key"),
        ({"matchExpressions": [expr("a/b/c", "Exists")]}, "selector.matchExpressions[0].key"),
        ({"matchExpressions": [expr("x" * 64, "Exists")]}, "selector.matchExpressions[0].key"),
        ({"matchExpressions": [expr("Bad_Prefix/name", "Exists")]}, "selector.matchExpressions[0].key"),
        ({"matchExpressions": [expr("env", "In", "not valid")]}, "selector.matchExpressions[0].values"),
        ({"matchExpressions": [expr("env", "In", "x" * 64)]}, "selector.matchExpressions[0].values"),
        ({"matchLabels": {"bad key": "a"}}, "selector.matchLabels"),
        ({"matchLabels": {"team": "-a"}}, "selector.matchLabels.team"),
        # Wrong types.
        ({"matchLabels": {"team": 1}}, "selector.matchLabels.team"),
        ({"matchLabels": ["team"]}, "selector.matchLabels"),
        ({"matchExpressions": {"key": "env"}}, "selector.matchExpressions"),
        ({"matchExpressions": ["env"]}, "selector.matchExpressions[0]"),
        ({"matchExpressions": [{"key": 1, "operator": "Exists"}]}, "selector.matchExpressions[0].key"),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": "x"}]}, "selector.matchExpressions[0].values"),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": [1]}]}, "selector.matchExpressions[0].values"),
        ("team=a", "selector"),
    ],
)
def test_a_malformed_selector_raises_malformed_object_naming_the_field(selector: Any, field: str) -> None:
    """``LabelSelectorAsSelector`` returns an error for these, so they are never evaluated."""
    with pytest.raises(MalformedObject) as info:
        LabelSelector.from_dict(selector)
    assert info.value.field.startswith(field)


@pytest.mark.parametrize(
    "key",
    ["team", "kubernetes.io/metadata.name", "app.kubernetes.io/part-of", "a", "A_b.c-9", "example.com/" + "x" * 63],
)
def test_qualified_label_keys_are_accepted(key: str) -> None:
    """Prefixed and unprefixed qualified names are valid keys."""
    assert LabelSelector.from_dict({"matchExpressions": [expr(key, "Exists")]}).matches({key: ""})


KEYS = st.sampled_from(["team", "env", "tier"])
VALUES = st.sampled_from(["a", "b", "c"])
LABELS = st.dictionaries(KEYS, VALUES)


@settings(max_examples=150, deadline=None)
@given(labels=LABELS, key=KEYS, values=st.lists(VALUES, min_size=1, unique=True))
def test_notin_is_the_complement_of_in_and_doesnotexist_of_exists(labels: dict[str, str], key: str, values: list[str]) -> None:
    """For every label set, ``NotIn`` = not ``In`` and ``DoesNotExist`` = not ``Exists``."""
    def one(e: dict[str, Any]) -> bool:
        return LabelSelector.from_dict({"matchExpressions": [e]}).matches(labels)

    assert one(expr(key, "NotIn", *values)) is not one(expr(key, "In", *values))
    assert one(expr(key, "DoesNotExist")) is not one(expr(key, "Exists"))
    assert one(expr(key, "In", *values)) is (key in labels and labels[key] in values)


@settings(max_examples=150, deadline=None)
@given(labels=LABELS, wanted=LABELS)
def test_match_labels_selects_label_sets_that_contain_every_pair(labels: dict[str, str], wanted: dict[str, str]) -> None:
    """``labels.SelectorFromSet(wanted)`` matches exactly the supersets of ``wanted``."""
    assert LabelSelector.from_dict({"matchLabels": wanted}).matches(labels) is (wanted.items() <= labels.items())


@settings(max_examples=150, deadline=None)
@given(
    labels=LABELS,
    exprs=st.lists(
        st.one_of(
            st.tuples(KEYS, st.sampled_from(["In", "NotIn"]), st.lists(VALUES, min_size=1, unique=True)),
            st.tuples(KEYS, st.sampled_from(["Exists", "DoesNotExist"]), st.just([])),
        ),
        max_size=4,
    ),
)
def test_a_selector_matches_when_every_requirement_matches(labels: dict[str, str], exprs: list[Any]) -> None:
    """Requirements are ANDed: the selector equals the conjunction of its single requirements."""
    es = [expr(k, op, *vs) for k, op, vs in exprs]
    whole = LabelSelector.from_dict({"matchExpressions": es}).matches(labels)
    assert whole is all(LabelSelector.from_dict({"matchExpressions": [e]}).matches(labels) for e in es)


@pytest.mark.parametrize(
    ("selector", "text"),
    [
        ({}, "<everything>"),
        ({"matchLabels": {"team": "a"}}, "team=a"),
        ({"matchExpressions": [expr("env", "In", "b", "a")]}, "env in (a,b)"),
        ({"matchExpressions": [expr("env", "NotIn", "a")]}, "env notin (a)"),
        ({"matchExpressions": [expr("env", "Exists")]}, "env"),
        ({"matchExpressions": [expr("env", "DoesNotExist")]}, "!env"),
    ],
)
def test_describe_uses_the_kubernetes_selector_syntax(selector: dict[str, Any], text: str) -> None:
    """Messages show selectors the way ``kubectl get -l`` takes them."""
    assert LabelSelector.from_dict(selector).describe() == text
