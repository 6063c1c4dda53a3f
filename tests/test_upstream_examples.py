"""No false denials: the upstream Gateway API examples pass a policy that mirrors the API."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from webhook.offline import evaluate, with_namespace
from webhook.policy.loader import load_paths
from webhook.state.store import ClusterState

EXAMPLES = Path(__file__).resolve().parents[1] / ".." / "shared" / "gateway-api" / "v1.6.1" / "examples"
POLICY = Path(__file__).parent / "scenarios" / "_shared" / "mirror-only.yaml"
# Examples that show a route on its own, for a Gateway documented elsewhere: a route
# whose Gateway is not in the folder gets the GitOps-order warning, never a denial.
FOLDERS = sorted({p.parent for p in EXAMPLES.rglob("*.yaml")})


def _objects(folder: Path) -> list[dict]:
    out = []
    for file in sorted(folder.glob("*.yaml")):
        out.extend(with_namespace(d) for d in yaml.safe_load_all(file.read_text()) if isinstance(d, dict))
    return out


def test_the_examples_are_there() -> None:
    """The data set is present (a missing ../shared would make this module pass vacuously)."""
    assert len(FOLDERS) > 20


@pytest.mark.parametrize("folder", FOLDERS, ids=[str(f.relative_to(EXAMPLES)) for f in FOLDERS])
def test_every_upstream_example_is_accepted(folder: Path) -> None:
    """Each object of an example folder, checked against the rest of the folder, is allowed."""
    objects = _objects(folder)
    policies = load_paths([POLICY])
    state = ClusterState.from_objects(objects)
    denied = []
    for obj in objects:
        validation, mutation = evaluate(obj, policies, state)
        if not validation.allowed or not mutation.allowed:
            denied.append(f"{obj['kind']} {obj['metadata'].get('name')}: {validation.message}")
        for warning in validation.warnings:
            # Only the apply-order warning is expected, for routes shown without their Gateway.
            assert warning.startswith("attachment/GatewayNotFound"), warning
    assert not denied, "\n".join(denied)
