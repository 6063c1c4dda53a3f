"""``routewarden check``: what the webhook would answer for every object in the manifests.

Every object is evaluated as the CREATE kube-apiserver would send (mutating webhook
first, then validating on the mutated object) against a cluster view holding the same
manifests, optionally laid over the live cluster. Exit 0 when everything would be
admitted, 1 when something would be denied (or warned, with ``--warnings-as-errors``),
2 when the input or the policies cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import report
from ..offline import evaluate_all
from ..scope import EXCLUDED_NAMESPACES, WEBHOOK_NAMESPACE, skipped_because
from .inputs import (
    EXIT_DENIED,
    EXIT_OK,
    OUTPUTS,
    InputError,
    add_input_arguments,
    fail,
    load_baseline,
    load_inputs,
    load_policies,
)


def configure(parser: argparse.ArgumentParser) -> None:
    add_input_arguments(parser)
    parser.add_argument("--policies", type=Path, action="append", default=[], metavar="DIR",
                        help="policy file or directory (repeatable; default: ./policies)")
    parser.add_argument("-o", "--output", choices=OUTPUTS, default="text", help="default: %(default)s")
    parser.add_argument("--warnings-as-errors", action="store_true",
                        help="fail (exit 1) on admission warnings too")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="text output: only what is denied or warned, and the summary")
    parser.add_argument("--webhook-namespace", default=WEBHOOK_NAMESPACE, metavar="NAME",
                        help="routewarden's own namespace, which its webhook configurations exclude like "
                             f"{', '.join(EXCLUDED_NAMESPACES)} (default: %(default)s)")
    parser.add_argument("--baseline", metavar="REF_OR_DIR", default=None,
                        help="what already exists: a git revision of this repository (same paths) or a file or "
                             "directory of manifests; only what the change adds or modifies is judged, as newer")


def run(args: argparse.Namespace) -> int:
    try:
        policies = load_policies(args.policies)
        inputs = load_inputs(args)
        baseline = load_baseline(args.baseline, args.paths, args.namespace) if args.baseline else None
    except InputError as exc:
        return fail("check", exc)
    triples = [(obj, m.path, m.line) for obj, m in zip(inputs.objects, inputs.manifests)]
    state = inputs.state

    def skip(obj: Mapping[str, Any]) -> str:
        namespace = str((obj.get("metadata") or {}).get("namespace") or "")
        if not namespace:
            return ""
        return skipped_because(namespace, state.namespace_labels(namespace), webhook_namespace=args.webhook_namespace)

    results = evaluate_all(triples, policies, state, baseline=baseline, skip=skip)
    strict = args.warnings_as_errors
    if args.output == "json":
        sys.stdout.write(report.check_json(results, warnings_as_errors=strict))
    elif args.output == "junit":
        suites = report.check_cases(results, warnings_as_errors=strict)
        sys.stdout.write(report.junit_xml(suites, name="routewarden check"))
    elif args.output == "github":
        sys.stdout.write(report.github_commands(results, warnings_as_errors=strict))
    elif args.output == "sarif":
        sys.stdout.write(report.sarif(results))
    else:
        sys.stdout.write(report.check_text(results, warnings_as_errors=strict, quiet=args.quiet))
    for warning in policies.warnings:
        sys.stderr.write(f"routewarden check: policy warning: {warning}\n")
    return EXIT_DENIED if any(report.failed(r, warnings_as_errors=strict) for r in results) else EXIT_OK
