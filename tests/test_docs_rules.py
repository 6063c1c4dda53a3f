"""The policy reference lists every rule id the engine can report, so a new rule is documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from webhook.policy.model import RULES

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "policy-reference.md"


@pytest.mark.parametrize("rule", sorted(RULES))
def test_every_rule_id_has_a_row_in_the_policy_reference(rule: str) -> None:
    """A row of the "Rules and reasons" table starts with the rule id."""
    assert f"| `{rule}` |" in REFERENCE.read_text()
