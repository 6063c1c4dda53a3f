"""The GitOps subcommands: ``check``, ``explain`` and ``test``.

Each module exposes ``configure(parser)`` and ``run(args) -> exit code``; the command line
(:mod:`webhook.cli`) registers them from :data:`GITOPS_COMMANDS`. Exit codes are the same
everywhere: 0 all good, 1 something was denied or a test failed, 2 bad usage or input
that cannot be read (the message names the file and the position).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import NamedTuple

from . import check, explain, testing


class Subcommand(NamedTuple):
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


GITOPS_COMMANDS: tuple[Subcommand, ...] = (
    Subcommand("check", "evaluate manifests as the webhook would admit them (for CI)", check.configure, check.run),
    Subcommand("explain", "say which listeners each route attaches to, and why not", explain.configure, explain.run),
    Subcommand("test", "run policy unit test folders (routewarden-test.yaml)", testing.configure, testing.run),
)

__all__ = ["GITOPS_COMMANDS", "Subcommand"]
