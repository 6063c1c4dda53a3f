"""``routewarden test DIR``: run policy unit test folders (see :mod:`webhook.policytest`).

Exit 0 when every expectation holds, 1 when one does not, 2 when a test definition is
broken (a missing file, an unknown field, policies that do not load): a suite that
cannot run must not look like one that passed.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .. import report
from ..policy.loader import PolicyLoadError
from ..policytest import TEST_FILE, Outcome, TestDefinitionError, find_tests, load_test, run_test
from ..state.manifests import ManifestError
from .inputs import EXIT_DENIED, EXIT_OK, EXIT_USAGE


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dirs", nargs="+", type=Path, metavar="DIR",
                        help=f"a test folder, or a directory searched for {TEST_FILE} files")
    parser.add_argument("-o", "--output", choices=("text", "junit"), default="text", help="default: %(default)s")


@dataclass
class FolderRun:
    folder: Path
    name: str
    outcomes: list[Outcome] = field(default_factory=list)
    error: str = ""


def run_folder(folder: Path) -> FolderRun:
    try:
        case = load_test(folder)
        return FolderRun(folder, case.name, list(run_test(case)))
    except (TestDefinitionError, PolicyLoadError, ManifestError, OSError, yaml.YAMLError) as exc:
        return FolderRun(folder, folder.resolve().name, error=str(exc))


def render_text(runs: list[FolderRun]) -> str:
    lines = []
    for r in runs:
        if r.error:
            lines.append(f"ERROR {r.name} ({r.folder}): broken test definition: {r.error}")
            continue
        failed = [o for o in r.outcomes if not o.passed]
        lines.append(f"{'FAIL' if failed else 'ok  '} {r.name} ({len(r.outcomes) - len(failed)}/{len(r.outcomes)})")
        for o in failed:
            lines.append(f"     {o.resource} ({o.operation}): expected {o.expected}, got {o.actual}")
            lines.extend(f"       {d}" for d in o.details)
    outcomes = [o for r in runs for o in r.outcomes]
    failures = sum(1 for o in outcomes if not o.passed)
    broken = sum(1 for r in runs if r.error)
    lines.append(f"{len(runs)} test folder(s), {len(outcomes)} expectation(s): "
                 f"{len(outcomes) - failures} passed, {failures} failed, {broken} broken")
    return "\n".join(lines) + "\n"


def junit_suites(runs: list[FolderRun]) -> list[report.Suite]:
    suites = []
    for r in runs:
        if r.error:
            case = report.Case(TEST_FILE, r.name, error=("TestDefinitionError", r.error, r.error), file=str(r.folder))
            suites.append(report.Suite(r.name, (case,)))
            continue
        cases = []
        for o in r.outcomes:
            name = f"{o.resource} ({o.operation})"
            failure = None if o.passed else ("ExpectationFailed", f"expected {o.expected}, got {o.actual}",
                                             "\n".join(o.details))
            cases.append(report.Case(name, r.name, failure=failure, file=str(r.folder / TEST_FILE)))
        suites.append(report.Suite(r.name, tuple(cases)))
    return suites


def run(args: argparse.Namespace) -> int:
    folders: list[Path] = []
    for directory in args.dirs:
        if not directory.is_dir():
            sys.stderr.write(f"routewarden test: {directory}: not a directory\n")
            return EXIT_USAGE
        found = find_tests(directory)
        if not found:
            sys.stderr.write(f"routewarden test: {directory}: no {TEST_FILE} found\n")
            return EXIT_USAGE
        folders.extend(found)
    runs = [run_folder(f) for f in folders]
    if args.output == "junit":
        sys.stdout.write(report.junit_xml(junit_suites(runs), name="routewarden test"))
    else:
        sys.stdout.write(render_text(runs))
    if any(r.error for r in runs):
        return EXIT_USAGE
    return EXIT_DENIED if any(not o.passed for r in runs for o in r.outcomes) else EXIT_OK
