"""What ``check`` and ``explain`` read: manifests, policies, and the cluster view built from them.

The view is built from the same manifests that are checked, so a commit that adds a route
together with its ReferenceGrant is judged as a whole. With ``--cluster`` the live objects
are listed once (by the same reflectors the webhook runs) and the manifests laid over
them: what the cluster will hold after the sync.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..offline import Baseline, with_namespace
from ..policy.loader import PolicyLoadError, load_paths
from ..policy.model import PolicySet
from ..state.kinds import WATCHED_KINDS, watched_kind_of
from ..state.manifests import Manifest, ManifestError, load_git, load_manifests
from ..state.store import ClusterState

EXIT_OK, EXIT_DENIED, EXIT_USAGE = 0, 1, 2
DEFAULT_POLICIES = Path("policies")
OUTPUTS = ("text", "json", "junit", "github", "sarif")


class InputError(Exception):
    """Input that cannot be used: the message says which file and where (exit code 2)."""


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="manifest files or directories (recursive); - reads standard input")
    parser.add_argument("-n", "--namespace", default="default",
                        help="namespace for namespaced objects without one (default: %(default)s)")
    parser.add_argument("--context", action="append", default=[], metavar="PATH",
                        help="manifests the view holds but nothing judges (the platform's Gateways and Namespaces "
                             "for a per-directory check); file or directory, repeatable, read like serve --state")
    parser.add_argument("--cluster", action="store_true",
                        help="list the live cluster once (kubeconfig) and lay the manifests over it")
    parser.add_argument("--kubeconfig", type=Path, default=None,
                        help="kubeconfig for --cluster (default: $KUBECONFIG or ~/.kube/config)")
    parser.add_argument("--cluster-timeout", type=float, default=30.0,
                        help="seconds to wait for the cluster listing (default: %(default)s)")


@dataclass(frozen=True, slots=True)
class Inputs:
    manifests: tuple[Manifest, ...]
    objects: tuple[dict[str, Any], ...]  # the manifests' objects, namespaces defaulted
    state: ClusterState
    context: tuple[dict[str, Any], ...] = ()  # in the view, not judged


def load_inputs(args: argparse.Namespace) -> Inputs:
    try:
        manifests = tuple(load_manifests(args.paths))
        context = tuple(with_namespace(m.obj, args.namespace) for m in load_manifests(args.context))
    except ManifestError as exc:
        raise InputError(str(exc)) from exc
    objects = tuple(with_namespace(m.obj, args.namespace) for m in manifests)
    if args.cluster:
        state = list_cluster(kubeconfig=args.kubeconfig, timeout=args.cluster_timeout)
        overlay(state, context + objects)
    else:
        state = ClusterState.from_objects(context + objects)
    return Inputs(manifests, objects, state, context)


def load_baseline(spec: str, paths: Sequence[str], namespace: str) -> Baseline:
    """What already exists: a file or directory of manifests, else a git revision of the
    repository holding ``paths`` (read at that revision, same paths)."""
    try:
        manifests = load_manifests([spec]) if Path(spec).exists() else load_git(spec, paths)
    except ManifestError as exc:
        raise InputError(f"--baseline: {exc}") from exc
    return Baseline.of(with_namespace(m.obj, namespace) for m in manifests)


def load_policies(paths: Sequence[Path] | None) -> PolicySet:
    chosen = list(paths or ())
    if not chosen:
        if not DEFAULT_POLICIES.is_dir():
            raise InputError("no policies: pass --policies DIR (./policies does not exist)")
        chosen = [DEFAULT_POLICIES]
    for path in chosen:
        if not path.exists():
            raise InputError(f"{path}: no such policy file or directory")
    try:
        policies = load_paths(chosen)
    except PolicyLoadError as exc:
        raise InputError("invalid policies:\n  " + "\n  ".join(str(e) for e in exc.errors)) from exc
    if not policies.tenancy and not policies.services:
        # A mistyped directory must not turn a CI gate into a silent pass.
        raise InputError(f"no policy documents in {', '.join(map(str, chosen))}")
    return policies


def overlay(state: ClusterState, objects: Sequence[dict[str, Any]]) -> None:
    """Lay manifests over a listed view; an object that already exists keeps its creation time.

    The creation time decides who claimed a hostname first, and applying a manifest
    does not change it.
    """
    for obj in objects:
        watched = watched_kind_of(obj)
        if watched is None:
            continue
        kind = watched.kind
        meta = obj.get("metadata") or {}
        live = state.get(kind, meta.get("namespace") or "", meta.get("name") or "")
        live_meta = (live or {}).get("metadata") or {}
        if live_meta.get("creationTimestamp") and not meta.get("creationTimestamp"):
            obj = {**obj, "metadata": {**meta, "creationTimestamp": live_meta["creationTimestamp"]}}
        state.apply(kind, obj)


def list_cluster(*, kubeconfig: Path | None, timeout: float) -> ClusterState:
    """The live objects of every watched kind, listed once by the webhook's own reflectors."""
    try:
        from kubernetes import config

        from ..state.informer import run_informers

        api_client = config.new_client_from_config(config_file=str(kubeconfig) if kubeconfig else None)
    except Exception as exc:
        raise InputError(f"--cluster: cannot load the kubeconfig: {exc}") from exc
    # The reflectors log retries at warning level; a CLI user needs only the outcome.
    logging.getLogger("routewarden.informer").setLevel(logging.ERROR)
    state = ClusterState(expected_kinds=(k.kind for k in WATCHED_KINDS))

    async def listed() -> None:
        task = asyncio.create_task(run_informers(state, api_client=api_client, kinds=WATCHED_KINDS))
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while not state.synced:
                if loop.time() > deadline or task.done():
                    pending = sorted(k for k in state.expected_kinds if not state.is_synced(k))
                    raise InputError(f"--cluster: could not list {', '.join(pending)} within {timeout:g}s")
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    try:
        asyncio.run(listed())
    finally:
        api_client.close()
    state.offline = True  # a snapshot: never "stale" while it is being evaluated
    state.missing = "is neither in the manifests nor in the cluster"
    return state


def fail(command: str, exc: Exception) -> int:
    sys.stderr.write(f"routewarden {command}: {exc}\n")
    return EXIT_USAGE
