"""``routewarden serve`` options of the background reconciler, and building it from them."""

from __future__ import annotations

import argparse
import os
import socket
import uuid
from pathlib import Path
from typing import Any

from .lease import LeaderElector, LeaseConfig
from .reconciler import MODES, Reconciler, ReconcilerConfig, service_kinds

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
DEFAULT_MODE = "dry-run"  # this release: report what would change before changing anything


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = ReconcilerConfig()
    lease = LeaseConfig(namespace="", identity="")
    group = parser.add_argument_group("background reconciliation of generated Services (online only)")
    group.add_argument("--reconcile", choices=MODES, default=DEFAULT_MODE,
                       help="keep generated Services as the policies compute them after they exist: on (server-side "
                            "apply), dry-run (apply with dryRun=All, log and count what would change) or off "
                            "(default: %(default)s)")
    group.add_argument("--reconcile-namespace", action="append", default=[], metavar="NAMESPACE",
                       help="watch and reconcile generated Services in this namespace only (repeatable; "
                            "default: every namespace). List the namespaces the RBAC grants")
    group.add_argument("--reconcile-resync", type=float, default=defaults.resync,
                       help="seconds between full resyncs of every generated Service (default: %(default)s)")
    group.add_argument("--reconcile-debounce", type=float, default=defaults.quiet,
                       help="seconds without changes before a Gateway's Services are reconciled "
                            "(default: %(default)s; at most --reconcile-max-delay after the first change)")
    group.add_argument("--reconcile-max-delay", type=float, default=defaults.max_delay,
                       help="longest wait for changes to settle (default: %(default)s)")
    group.add_argument("--reconcile-rate", type=float, default=defaults.rate,
                       help="applies per second, on average (default: %(default)s; bursts of "
                            f"{defaults.burst})")
    group.add_argument("--leader-elect-resource-name", default=lease.name,
                       help="the Lease that elects the one replica that writes (default: %(default)s)")
    group.add_argument("--leader-elect-resource-namespace", default=None,
                       help="its namespace (default: POD_NAMESPACE, the ServiceAccount's namespace, the "
                            "kubeconfig context's, or default)")
    group.add_argument("--leader-elect-lease-duration", type=float, default=lease.lease_duration,
                       help="seconds a follower waits after the leader's last renewal (default: %(default)s)")
    group.add_argument("--leader-elect-renew-deadline", type=float, default=lease.renew_deadline,
                       help="seconds the leader keeps leading without renewing (default: %(default)s)")
    group.add_argument("--leader-elect-retry-period", type=float, default=lease.retry_period,
                       help="seconds between attempts to acquire or renew (default: %(default)s)")


def lease_namespace(args: argparse.Namespace) -> str:
    """Where the Lease lives: the flag, the Pod's namespace, the kubeconfig context's, or default."""
    if args.leader_elect_resource_namespace:
        return str(args.leader_elect_resource_namespace)
    if namespace := os.environ.get("POD_NAMESPACE"):
        return namespace
    if SERVICE_ACCOUNT_NAMESPACE.is_file():
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
    if getattr(args, "kubeconfig", None):
        from kubernetes import config

        try:
            _, context = config.list_kube_config_contexts(config_file=str(args.kubeconfig))
            namespace = (context or {}).get("context", {}).get("namespace")
        except Exception:  # noqa: BLE001 - an unusual kubeconfig: fall back to the default namespace
            namespace = None
        if namespace:
            return str(namespace)
    return "default"


def identity() -> str:
    """A unique holder name, as client-go's (host name, then a UUID)."""
    return f"{os.environ.get('POD_NAME') or socket.gethostname()}_{uuid.uuid4()}"


def build(args: argparse.Namespace, *, state: Any, policies: Any, telemetry: Any, api_client: Any) -> Reconciler:
    """The reconciler ``args`` describe (mode on or dry-run), with its leader elector."""
    lease = LeaseConfig(
        namespace=lease_namespace(args), identity=identity(), name=args.leader_elect_resource_name,
        lease_duration=args.leader_elect_lease_duration, renew_deadline=args.leader_elect_renew_deadline,
        retry_period=args.leader_elect_retry_period,
    )
    config = ReconcilerConfig(mode=args.reconcile, resync=args.reconcile_resync, quiet=args.reconcile_debounce,
                              max_delay=args.reconcile_max_delay, rate=args.reconcile_rate)
    return Reconciler(state=state, policies=policies, api_client=api_client, telemetry=telemetry,
                      elector=LeaderElector(api_client, lease), config=config,
                      service_watches=service_kinds(args.reconcile_namespace))
