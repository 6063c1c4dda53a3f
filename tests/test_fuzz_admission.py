"""A bounded coverage-guided fuzzing run of the parser and every rule (fuzz/fuzz_admission.py)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

FUZZER = REPO / "fuzz" / "fuzz_admission.py"
# CI runs longer; a local run stays short. FUZZ_SECONDS overrides both.
SECONDS = int(os.environ.get("FUZZ_SECONDS") or (15 if os.environ.get("CI") == "true" else 5))


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None,
                    reason="atheris is not installed (no wheel for this platform); run fuzz/ where it is")
def test_a_bounded_fuzzing_run_breaks_no_invariant(tmp_path: Path) -> None:
    """libFuzzer mutates the captured reviews for a fixed time; no input breaks the oracle."""
    corpus, artifacts = tmp_path / "corpus", tmp_path / "artifacts"
    corpus.mkdir(), artifacts.mkdir()
    for i, raw in enumerate(sorted((REPO.parent / "shared" / "admission-reviews" / "raw").glob("*.json"))):
        (corpus / f"capture-{i:02d}.json").write_bytes(raw.read_bytes())
    result = subprocess.run(
        [sys.executable, str(FUZZER), f"-max_total_time={SECONDS}", "-print_final_stats=1", "-seed=1",
         f"-artifact_prefix={artifacts}/", str(corpus)],
        capture_output=True, text=True, timeout=SECONDS + 60, cwd=REPO, check=False,
    )
    runs = re.search(r"stat::number_of_executed_units:\s+(\d+)", result.stderr)
    print(f"fuzzing: {runs.group(1) if runs else '?'} inputs in {SECONDS}s, exit {result.returncode}")
    crashes = sorted(p.name for p in artifacts.iterdir())
    assert result.returncode == 0 and not crashes, result.stderr[-4000:]
    assert runs and int(runs.group(1)) > 1000  # it really ran, past the seeds
