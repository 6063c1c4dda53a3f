"""The code stays lint-clean: ruff over the package, tests, benchmarks and fuzz harness."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing() -> None:
    """`make lint` is part of the suite, so CI fails on what it would report."""
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "webhook", "tests", "bench", "fuzz"],
                            check=False, cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
