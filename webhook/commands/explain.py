"""``routewarden explain``: why each route is, or is not, attached, and which listeners of
each ListenerSet its Gateway will serve (see :mod:`webhook.explain`).

Exit 0 when every route is predicted attached with its references permitted and every
ListenerSet is accepted with all its listeners served, 1 when one is not (or when it
cannot be told from the view), 2 when the input cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .. import explain as explaining
from .inputs import EXIT_DENIED, EXIT_OK, InputError, add_input_arguments, fail, load_inputs, load_policies

EXPLAIN_SCHEMA_VERSION = 1


def configure(parser: argparse.ArgumentParser) -> None:
    add_input_arguments(parser)
    parser.add_argument("-o", "--output", choices=("text", "json"), default="text", help="default: %(default)s")
    parser.add_argument("--policies", type=Path, action="append", default=[], metavar="DIR",
                        help="also show how these policies' hostname patterns resolve for each route's namespace, "
                             "and which TenancyExceptions cover it (repeatable)")


def run(args: argparse.Namespace) -> int:
    try:
        inputs = load_inputs(args)
        policies = load_policies(args.policies) if args.policies else None
    except InputError as exc:
        return fail("explain", exc)
    triples = [(obj, m.path, m.line) for obj, m in zip(inputs.objects, inputs.manifests)]
    reports = explaining.explain(triples, inputs.state, policies)
    sets = explaining.explain_listenersets(triples, inputs.state)
    if args.output == "json":
        document = {"schemaVersion": EXPLAIN_SCHEMA_VERSION, "kind": "ExplainReport",
                    "routes": [r.to_dict() for r in reports], "listenerSets": [s.to_dict() for s in sets]}
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        text = explaining.render_listenersets_text(sets)
        sys.stdout.write(explaining.render_text(reports) if reports or not text else "")
        sys.stdout.write(("\n" if reports and text else "") + text)
    ok = all(r.attached and r.refs_resolved and not r.error for r in reports) and all(
        s.served and not s.error for s in sets)
    return EXIT_OK if ok else EXIT_DENIED
