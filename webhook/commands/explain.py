"""``routewarden explain``: why each route is, or is not, attached (see :mod:`webhook.explain`),
and, for a Service, what the background reconciler would apply (:mod:`webhook.reconcile.report`).

Exit 0 when every route is attached with its references permitted, 1 when one is not,
2 when the input cannot be read. Services do not change the exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .. import explain as explaining
from ..reconcile import report as services
from .inputs import EXIT_DENIED, EXIT_OK, InputError, add_input_arguments, fail, load_inputs, load_policies

EXPLAIN_SCHEMA_VERSION = 1


def configure(parser: argparse.ArgumentParser) -> None:
    add_input_arguments(parser)
    parser.add_argument("-o", "--output", choices=("text", "json"), default="text", help="default: %(default)s")
    parser.add_argument("--policies", type=Path, action="append", default=None,
                        help="policy file or directory, for Services (repeatable; default: policies/)")


def run(args: argparse.Namespace) -> int:
    try:
        inputs = load_inputs(args)
        triples = [(obj, m.path, m.line) for obj, m in zip(inputs.objects, inputs.manifests)]
        has_services = any(services.is_service(obj) for obj, _, _ in triples)
        policies = load_policies(args.policies) if has_services else None
    except InputError as exc:
        return fail("explain", exc)
    reports = explaining.explain(triples, inputs.state)
    service_reports = services.explain_services(triples, inputs.state, policies) if policies is not None else []
    if args.output == "json":
        document = {"schemaVersion": EXPLAIN_SCHEMA_VERSION, "kind": "ExplainReport",
                    "routes": [r.to_dict() for r in reports]}
        if service_reports:
            document["services"] = [r.to_dict() for r in service_reports]
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        text = explaining.render_text(reports) if reports or not service_reports else ""
        sys.stdout.write(text + ("\n" if text and service_reports else "") + services.render_services(service_reports))
    ok = all(r.attached and r.refs_resolved and not r.error for r in reports)
    return EXIT_OK if ok else EXIT_DENIED
