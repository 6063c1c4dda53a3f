"""``routewarden explain``: why each route is, or is not, attached, which listeners of
each ListenerSet its Gateway will serve (see :mod:`webhook.explain`), and, for a
generated Service, what the background reconciler would apply (:mod:`webhook.reconcile.report`).

Exit 0 when every route is predicted attached with its references permitted and every
ListenerSet is accepted with all its listeners served, 1 when one is not (or when it
cannot be told from the view), 2 when the input cannot be read. Services do not change
the exit code.
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
    parser.add_argument("--policies", type=Path, action="append", default=[], metavar="DIR",
                        help="also show how these policies' hostname patterns resolve for each route's namespace, "
                             "which TenancyExceptions cover it, and what the reconciler would apply to a Service "
                             "(repeatable; for Services the default is policies/)")


def run(args: argparse.Namespace) -> int:
    try:
        inputs = load_inputs(args)
        triples = [(obj, m.path, m.line) for obj, m in zip(inputs.objects, inputs.manifests)]
        has_services = any(services.is_service(obj) for obj, _, _ in triples)
        policies = load_policies(args.policies) if args.policies or has_services else None
    except InputError as exc:
        return fail("explain", exc)
    reports = explaining.explain(triples, inputs.state, policies)
    sets = explaining.explain_listenersets(triples, inputs.state)
    service_reports = services.explain_services(triples, inputs.state, policies) if has_services and policies else []
    if args.output == "json":
        document = {"schemaVersion": EXPLAIN_SCHEMA_VERSION, "kind": "ExplainReport",
                    "routes": [r.to_dict() for r in reports], "listenerSets": [s.to_dict() for s in sets]}
        if service_reports:
            document["services"] = [r.to_dict() for r in service_reports]
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        texts = [t for t in (explaining.render_listenersets_text(sets), services.render_services(service_reports)) if t]
        head = explaining.render_text(reports) if reports or not texts else ""
        sys.stdout.write("\n".join(t for t in (head, *texts) if t))
    ok = all(r.attached and r.refs_resolved and not r.error for r in reports) and all(
        s.served and not s.error for s in sets)
    return EXIT_OK if ok else EXIT_DENIED
