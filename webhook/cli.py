"""The ``routewarden`` command line: one function pair (configure, run) per subcommand.

Subcommands live in :data:`COMMANDS`; adding one (``check``, ``explain``, ``test``) is
adding a :class:`Command` with a function that declares its arguments and a function
that runs it and returns the exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import ssl
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__, bootstrap
from .audit import audit_hook
from .certs import (
    KEY_TYPES,
    LOCAL_HOSTNAMES,
    LOCAL_IPS,
    CertificateFiles,
    ca_bundle,
    service_hostnames,
    write_certificates,
)
from .commands import GITOPS_COMMANDS
from .freshness import DEFAULT_CONFIRM_INTERVAL, confirm_interval
from .logs import configure_logging, fields
from .policy.loader import PolicyStore
from .reconcile import wiring as reconcile_options
from .runtime import Runtime
from .server import Background, create_app, serve
from .state.kinds import WATCHED_KINDS
from .state.manifests import ManifestError, load_manifests, state_from_manifests
from .state.store import ClusterState
from .telemetry import Telemetry
from .tls import CertificateReloader, server_context

log = logging.getLogger("routewarden.cli")

DEV_CERT_DIR = Path("certs/dev")
DEV_POLICIES = Path("policies")
DEV_STATE = Path("policies/dev-state")
DEV_ADDRESS = "127.0.0.1"
DEFAULT_CERT_DIR = Path("/etc/routewarden/tls")
DEFAULT_PORT = 8443
EXAMPLE_REVIEW = Path("examples/reviews/httproute-create.json")


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# --------------------------------------------------------------------------- serve
def configure_serve(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dev", action="store_true",
                        help="local development: make certificates in certs/dev if missing, serve policies/ "
                             "on 127.0.0.1 with no cluster (state from policies/dev-state/ if present)")
    parser.add_argument("--policies", type=Path, default=None, help="policy directory (default: policies/)")
    parser.add_argument("--cert-dir", type=Path, default=None,
                        help=f"directory with tls.crt and tls.key (default: {DEFAULT_CERT_DIR}; --dev: certs/dev)")
    parser.add_argument("--address", default=None, help="listen address (default: 0.0.0.0; --dev: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="HTTPS port (default: %(default)s)")
    parser.add_argument("--client-ca", type=Path, default=None,
                        help="require clients (kube-apiserver) to present a certificate signed by this CA")
    cluster = parser.add_mutually_exclusive_group()
    cluster.add_argument("--kubeconfig", type=Path, default=None, help="watch the cluster of this kubeconfig")
    cluster.add_argument("--in-cluster", action="store_true", help="watch the cluster this pod runs in")
    parser.add_argument("--state", type=Path, action="append", default=[],
                        help="offline cluster view from manifests (file or directory; repeatable)")
    parser.add_argument("--shutdown-timeout", type=float, default=25.0,
                        help="seconds to finish in-flight reviews after SIGTERM (default: %(default)s)")
    parser.add_argument("--event-loop", choices=("auto", "uvloop", "asyncio"), default="auto",
                        help="event loop: uvloop when installed (auto), or asyncio's own (default: auto)")
    parser.add_argument("--access-log", action="store_true",
                        help="log every HTTP request too (the decision log already has one line per review)")
    parser.add_argument("--shutdown-delay", type=float, default=0.0,
                        help="seconds to keep serving, not ready, after SIGTERM before closing (default: 0)")
    parser.add_argument("--audit-interval", type=float, default=300.0,
                        help="seconds between audits of the cluster view against the policies (0: off; "
                             "default: %(default)s)")
    parser.add_argument("--watch-confirm-interval", type=_seconds, default=DEFAULT_CONFIRM_INTERVAL,
                        help="longest a healthy watch goes without the apiserver confirming it current: each "
                             "watch is resumed from its resourceVersion within this; a third of the smallest "
                             "staleState.maxAgeSeconds of the loaded policies when that is shorter "
                             "(default: %(default)s)")
    parser.add_argument("--certificate-interval", type=float, default=10.0,
                        help="seconds between checks of the certificate files for rotation (default: %(default)s)")
    bootstrap.add_arguments(parser)
    reconcile_options.add_arguments(parser)


def _seconds(text: str) -> float:
    """A number of seconds of at least 1 (an argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 second: {text!r}")
    return value


def ensure_dev_certificates(directory: Path) -> CertificateFiles:
    """Dev certificates for localhost, made once and reused (so a trusted CA stays trusted)."""
    files = CertificateFiles(directory)
    if not files.complete():
        write_certificates(directory, hostnames=LOCAL_HOSTNAMES, ips=LOCAL_IPS)
        log.info("made development certificates", extra=fields(directory=str(directory)))
    return files


def kube_api_client(*, kubeconfig: Path | None, in_cluster: bool) -> Any:
    from kubernetes import client, config

    if in_cluster:
        config.load_incluster_config()
        return client.ApiClient()
    return config.new_client_from_config(config_file=str(kubeconfig))


def informer_hook(
    state: ClusterState, *, kubeconfig: Path | None, in_cluster: bool, confirm_within: Callable[[], float] | None = None,
    on_event: Callable[..., None] | None = None,
) -> Background | None:
    """The list/watch task feeding ``state`` (and ``on_event``), or None when the informer is not available."""
    try:
        from .state.informer import run_informers
    except ImportError as exc:
        log.warning("cluster informer not available: serving with an offline cluster view",
                    extra=fields(error=str(exc)))
        return None
    api_client = kube_api_client(kubeconfig=kubeconfig, in_cluster=in_cluster)
    state.expect(k.kind for k in WATCHED_KINDS)

    async def run() -> None:
        freezer = asyncio.create_task(freeze_when_synced(state))
        try:
            await run_informers(state, api_client=api_client, kinds=WATCHED_KINDS, confirm_within=confirm_within,
                                on_event=on_event)
        finally:
            freezer.cancel()

    return run


def _curl_example(files: CertificateFiles, host: str, port: int) -> str:
    return (f"routewarden dev server: https://{host}:{port}\n"
            f"  curl --cacert {files.ca_cert} -H 'Content-Type: application/json' "
            f"--data @{EXAMPLE_REVIEW} 'https://{host}:{port}/validate?timeout=10s'\n")


def run_serve(args: argparse.Namespace) -> int:
    configure_logging(args.log_level, args.log_format)
    cert_dir = args.cert_dir or (DEV_CERT_DIR if args.dev else DEFAULT_CERT_DIR)
    address = args.address or (DEV_ADDRESS if args.dev else "0.0.0.0")
    files = ensure_dev_certificates(cert_dir) if args.dev else CertificateFiles(cert_dir)
    telemetry = Telemetry.setup()
    policies = PolicyStore(args.policies or DEV_POLICIES, on_reload=lambda ok: telemetry.policy_reloaded(ok=ok))
    policies.reload()
    online = (args.kubeconfig is not None or args.in_cluster) and not args.dev
    if online and args.state:
        sys.stderr.write("routewarden serve: --state builds an offline cluster view; "
                         "it cannot be combined with --kubeconfig or --in-cluster\n")
        return 2
    state_paths = list(args.state) or ([DEV_STATE] if args.dev and DEV_STATE.is_dir() else [])
    try:
        # Online the view starts empty and unsynced: readiness waits for the informer's lists.
        state = ClusterState() if online else state_from_manifests(load_manifests(state_paths))
    except ManifestError as exc:
        sys.stderr.write(f"routewarden serve: {exc}\n")
        return 2
    reconciler = reconcile_options.build(
        args, state=state, policies=policies, telemetry=telemetry,
        api_client=kube_api_client(kubeconfig=args.kubeconfig, in_cluster=args.in_cluster),
    ) if online and args.reconcile != "off" else None
    informer = informer_hook(
        state, kubeconfig=args.kubeconfig, in_cluster=args.in_cluster,
        confirm_within=lambda: confirm_interval(policies.current, args.watch_confirm_interval),
        on_event=reconciler.on_event if reconciler else None,
    ) if online else None
    runtime = Runtime(policies=policies, state=state, telemetry=telemetry, require_sync=informer is not None,
                      watch_confirm_interval=args.watch_confirm_interval)
    if args.self_managed_certs:  # issue or adopt the certificates in cert_dir before they are loaded
        informer = bootstrap.self_managed_certificates(args, files, informer, connect=lambda: kube_api_client(
            kubeconfig=args.kubeconfig, in_cluster=args.in_cluster))
    try:
        context = server_context(files.cert, files.key, client_ca=args.client_ca)
        reloader = CertificateReloader(context, files.cert, files.key)
    except (OSError, ssl.SSLError, ValueError) as exc:
        sys.stderr.write(f"routewarden serve: cannot load the serving certificate from {cert_dir}: {exc}\n"
                         "(make one with `routewarden certs`, or use --dev)\n")
        return 2
    audit = audit_hook(state, policies, telemetry, interval=args.audit_interval, api_client=kube_api_client(
        kubeconfig=args.kubeconfig, in_cluster=args.in_cluster) if online else None)
    app = create_app(runtime, certificates=reloader,
                     certificate_interval=args.certificate_interval, informer=informer, audit=audit,
                     reconciler=reconciler.run if reconciler else None)

    def started(port: int) -> None:
        if args.dev:
            sys.stdout.write(_curl_example(files, address, port))
            sys.stdout.flush()

    if not online:
        freeze_heap()  # the offline view is complete now
    run_loop(args.event_loop)(serve(app, host=address, port=args.port, ssl_context=context,
                                    shutdown_timeout=args.shutdown_timeout, shutdown_delay=args.shutdown_delay,
                                    on_started=started, access_log=args.access_log))
    return 0


def run_loop(choice: str) -> Callable[[Any], Any]:
    """``asyncio.run`` or ``uvloop.run`` (``auto``: uvloop when it is installed)."""
    if choice in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise SystemExit("routewarden serve: --event-loop uvloop, but uvloop is not installed") from None
        else:
            return uvloop.run
    return asyncio.run


def freeze_heap() -> None:
    """Move what is alive now (the cluster view, policies, modules) out of the garbage
    collector's reach: a full collection of a 10k-route view takes ~0.2 s, a pause every
    review waiting at that moment would pay. Objects created later are collected as usual."""
    gc.collect()
    gc.freeze()
    log.info("heap frozen", extra=fields(objects=gc.get_freeze_count()))


async def freeze_when_synced(state: ClusterState, *, poll: float = 0.5) -> None:
    """:func:`freeze_heap` once, when the online view has synced for the first time."""
    while not state.synced:
        await asyncio.sleep(poll)
    freeze_heap()


# --------------------------------------------------------------------------- certs
def configure_certs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", type=Path, default=DEV_CERT_DIR, help="output directory (default: %(default)s)")
    parser.add_argument("--service", help="Service name: adds its DNS names (needs --namespace)")
    parser.add_argument("--namespace", help="the Service's namespace")
    parser.add_argument("--host", action="append", default=[], help="extra DNS name (repeatable)")
    parser.add_argument("--ip", action="append", default=[], help="extra IP address (repeatable)")
    parser.add_argument("--key-type", choices=KEY_TYPES, default="ecdsa", help="default: %(default)s")
    parser.add_argument("--days", type=int, default=365, help="serving certificate validity (default: %(default)s)")


def run_certs(args: argparse.Namespace) -> int:
    if bool(args.service) != bool(args.namespace):
        sys.stderr.write("routewarden certs: --service and --namespace go together\n")
        return 2
    hostnames = service_hostnames(args.service, args.namespace) if args.service else []
    hostnames += [*args.host, *LOCAL_HOSTNAMES]
    try:
        files, ca = write_certificates(args.dir, hostnames=hostnames, ips=[*args.ip, *LOCAL_IPS],
                                       key_type=args.key_type, days=args.days)
    except (ValueError, TypeError) as exc:
        sys.stderr.write(f"routewarden certs: {exc}\n")
        return 2
    sys.stderr.write(f"wrote {files.ca_cert}, {files.ca_key}, {files.cert}, {files.key}\n"
                     "caBundle for the webhook configurations:\n")
    sys.stdout.write(ca_bundle(ca.cert_pem) + "\n")
    return 0


# --------------------------------------------------------------------------- version
def run_version(args: argparse.Namespace) -> int:
    sys.stdout.write(f"routewarden {__version__}\n")
    return 0


COMMANDS: tuple[Command, ...] = (
    Command("serve", "run the admission webhook over HTTPS", configure_serve, run_serve),
    Command("certs", "make a CA and a serving certificate for the webhook", configure_certs, run_certs),
    Command("version", "print the version", lambda parser: None, run_version),
    *(Command(*c) for c in GITOPS_COMMANDS),
)


def _logging_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--log-level", default=os.environ.get("ROUTEWARDEN_LOG_LEVEL", "info"),
                        type=str.upper, choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parent.add_argument("--log-format", default="json", choices=["json", "text"])
    return parent


def build_parser(commands: Sequence[Command] = COMMANDS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="routewarden", description="Admission webhook for shared Gateway API gateways")
    parser.add_argument("--version", action="version", version=f"routewarden {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parent = _logging_options()
    for command in commands:
        sub_parser = sub.add_parser(command.name, help=command.help, description=command.help, parents=[parent])
        command.configure(sub_parser)
        sub_parser.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
