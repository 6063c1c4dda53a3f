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
    parser.add_argument("--strict", action="store_true",
                        help="a governed object without an expected result fails (default: reported as not checked)")
    parser.add_argument("-n", "--namespace", default="default",
                        help="namespace for namespaced objects without one (default: %(default)s)")


@dataclass
class FolderRun:
    folder: Path
    name: str
    outcomes: list[Outcome] = field(default_factory=list)
    error: str = ""


def run_folder(folder: Path, *, strict: bool = False, namespace: str = "default") -> FolderRun:
    try:
        case = load_test(folder)
        return FolderRun(folder, case.name, list(run_test(case, strict=strict, namespace=namespace)))
    except (TestDefinitionError, PolicyLoadError, ManifestError, OSError, yaml.YAMLError) as exc:
        return FolderRun(folder, folder.resolve().name, error=str(exc))


def render_text(runs: list[FolderRun]) -> str:
    lines = []
    for r in runs:
        if r.error:
            lines.append(f"ERROR {r.name} ({r.folder}): broken test definition: {r.error}")
            continue
        checked = [o for o in r.outcomes if o.checked]
        failed = [o for o in checked if not o.passed]
        unchecked = [o for o in r.outcomes if not o.checked]
        note = f", {len(unchecked)} not checked" if unchecked else ""
        lines.append(f"{'FAIL' if failed else 'ok  '} {r.name} ({len(checked) - len(failed)}/{len(checked)}{note})")
        for o in failed:
            lines.append(f"     {o.resource} ({o.operation}): {o.headline}")
            lines.extend(f"       {d}" for d in o.details if d != o.headline)
        lines.extend(f"     not checked: {o.resource} ({o.operation}): {o.actual}" for o in unchecked)
    outcomes = [o for r in runs for o in r.outcomes if o.checked]
    failures = sum(1 for o in outcomes if not o.passed)
    unchecked_total = sum(1 for r in runs for o in r.outcomes if not o.checked)
    broken = sum(1 for r in runs if r.error)
    lines.append(f"{len(runs)} test folder(s), {len(outcomes)} expectation(s): "
                 f"{len(outcomes) - failures} passed, {failures} failed, {broken} broken"
                 + (f", {unchecked_total} object(s) not checked" if unchecked_total else ""))
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
            failure = None if o.passed else ("ExpectationFailed", o.headline, "\n".join(o.details))
            skipped = None if o.checked else f"not checked: no expected result (got {o.actual})"
            cases.append(report.Case(name, r.name, failure=failure, skipped=skipped, file=str(r.folder / TEST_FILE)))
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
    runs = [run_folder(f, strict=args.strict, namespace=args.namespace) for f in folders]
    if args.output == "junit":
        sys.stdout.write(report.junit_xml(junit_suites(runs), name="routewarden test"))
    else:
        sys.stdout.write(render_text(runs))
    if any(r.error for r in runs):
        return EXIT_USAGE
    return EXIT_DENIED if any(not o.passed for r in runs for o in r.outcomes) else EXIT_OK
