"""The package's public surface is deliberate: a sorted ``__all__`` that imports and works."""

from __future__ import annotations

import json
from pathlib import Path

import webhook

REPO = Path(__file__).resolve().parents[1]


def test_all_is_sorted_and_every_name_exists() -> None:
    """``__all__`` is kept sorted and names only what the package really exports."""
    assert webhook.__all__ == sorted(webhook.__all__)
    assert all(hasattr(webhook, name) for name in webhook.__all__)


def test_the_documented_example_decides_a_captured_review() -> None:
    """The module docstring's example works on a real review: policies, a view, a decision."""
    review = json.loads((REPO / "examples" / "reviews" / "httproute-create.json").read_text())
    policies = webhook.load_paths([REPO / "tests" / "scenarios" / "_shared" / "mirror-only.yaml"])
    state = webhook.ClusterState.from_objects([])
    decision = webhook.decide(webhook.parse_review(review), policies, state, webhook="validate")
    assert isinstance(decision, webhook.Decision)
    assert decision.allowed and [v.rule for v in decision.violations] == ["attachment/GatewayNotFound"]
    answer = webhook.build_response(webhook.parse_review(review), decision)
    assert answer["response"]["uid"] == review["request"]["uid"]
