"""The aiohttp application: wiring, things with a lifetime, and graceful shutdown.

:func:`create_app` only wires: routes to :mod:`webhook.handlers`, state under typed
``AppKey``s, and one ``cleanup_ctx`` per background task (certificate reload, policy
hot reload, the cluster informer). :func:`serve` runs it until SIGTERM.

Shutdown on SIGTERM: readiness turns false, the listening socket closes (no new
connections), idle keep-alive connections are closed at once (kube-apiserver keeps
reusing an open connection to a terminating pod, so waiting for its idle timeout would
only delay exit), reviews in flight are finished within ``shutdown_timeout``, then the
background tasks stop and the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from . import handlers
from .handlers import BODY_LIMIT, LIFECYCLE, RUNTIME, TELEMETRY, Lifecycle
from .logs import fields
from .runtime import Runtime
from .telemetry import Telemetry
from .tls import CertificateReloader

log = logging.getLogger("routewarden.server")

# An AdmissionReview carries the object *and* oldObject. etcd stores objects up to
# 1.5 MiB, so a legitimate UPDATE review is ~3 MiB of JSON plus the envelope. aiohttp's
# default (1 MiB) would refuse large but valid objects; 8 MiB leaves headroom (the same
# reasoning as controller-runtime's 7 MiB) while still bounding memory per request.
MAX_BODY_BYTES = 8 * 1024 * 1024
# Longer than the idle timeout of client-go's transport (90 s), so the apiserver, not we,
# closes an idle connection: a server-side close racing a new request fails that call.
# Since aiohttp 3.14.4 the same timer runs from the moment a connection is accepted, so it
# also bounds a client that never sends (or never finishes) its request headers; no
# shorter header timeout on purpose: Go may dial a connection and park it unused in its
# idle pool, and closing it early would fail the request that later picks it up.
KEEPALIVE_TIMEOUT = 120.0
# Request line and each header at most 8 KiB, at most 64 headers: kube-apiserver sends
# about ten short headers. Anything larger is refused with 400 before a handler runs.
MAX_LINE_SIZE = 8190
MAX_FIELD_SIZE = 8190
MAX_HEADERS = 64

Background = Callable[[], Awaitable[None]]


def _lifetime(name: str, factory: Background) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup_ctx running ``factory()`` as a task from startup to cleanup."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(factory(), name=name)
        task.add_done_callback(_report_crash)
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    return context


def _report_crash(task: asyncio.Task[None]) -> None:
    if task.cancelled() or (exc := task.exception()) is None:
        return
    log.error("background task stopped", extra=fields(task=task.get_name(), **handlers.exception_fields(exc)))


def _telemetry_lifetime(telemetry: Telemetry, runtime: Runtime) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        telemetry.watch_state(runtime.state, max_age=runtime.view_max_age)
        yield
        telemetry.shutdown()

    return context


def create_app(
    runtime: Runtime,
    *,
    telemetry: Telemetry | None = None,
    certificates: CertificateReloader | None = None,
    certificate_interval: float = 10.0,
    policy_interval: float | None = 5.0,
    informer: Background | None = None,
    audit: Background | None = None,
    reconciler: Background | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> web.Application:
    """The webhook application; the same factory serves production and the tests."""
    telemetry = telemetry or runtime.telemetry
    app = web.Application(client_max_size=max_body_bytes, middlewares=[handlers.serve_request])
    app[RUNTIME] = runtime
    app[TELEMETRY] = telemetry
    app[LIFECYCLE] = Lifecycle()
    app[BODY_LIMIT] = max_body_bytes
    app.router.add_post("/validate", handlers.validate)
    app.router.add_post("/mutate", handlers.mutate)
    app.router.add_get("/healthz", handlers.healthz)
    app.router.add_get("/readyz", handlers.readyz)
    app.router.add_get("/metrics", handlers.metrics)
    app.cleanup_ctx.append(_telemetry_lifetime(telemetry, runtime))
    if certificates is not None:
        reloader = certificates

        async def watch_certificates() -> None:
            await reloader.watch(certificate_interval,
                                 on_load=lambda expiry: telemetry.certificate_expiry(expiry.timestamp()))

        app.cleanup_ctx.append(_lifetime("certificate-reload", watch_certificates))
    watch = getattr(runtime.policies, "watch", None)  # PolicyStore.watch(interval) is the hot reload
    if policy_interval is not None and watch is not None:
        app.cleanup_ctx.append(_lifetime("policy-reload", lambda: watch(policy_interval)))
    if informer is not None:
        app.cleanup_ctx.append(_lifetime("informer", informer))
    if audit is not None:
        app.cleanup_ctx.append(_lifetime("audit", audit))
    if reconciler is not None:  # stopped first (cleanup runs in reverse), so its Lease is released early
        app.cleanup_ctx.append(_lifetime("reconciler", reconciler))
    return app


async def start(
    app: web.Application,
    *,
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None,
    shutdown_timeout: float = 25.0,
    access_log: bool = True,
    keepalive_timeout: float = KEEPALIVE_TIMEOUT,
) -> tuple[web.AppRunner, int]:
    """Start serving ``app``; returns the runner (``await runner.cleanup()`` stops) and the port."""
    kwargs: dict[str, Any] = {"keepalive_timeout": keepalive_timeout, "max_line_size": MAX_LINE_SIZE,
                              "max_field_size": MAX_FIELD_SIZE, "max_headers": MAX_HEADERS}
    if not access_log:
        kwargs["access_log"] = None
    runner = web.AppRunner(app, shutdown_timeout=shutdown_timeout, handle_signals=False, **kwargs)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context, reuse_address=True)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    return runner, bound


def _idle(connection: Any, lifecycle: Lifecycle) -> bool:
    """No request on the connection: none in a handler, none whose headers aiohttp has
    parsed and queued, none between the two (aiohttp's own state, read defensively). A
    request whose first bytes are still in flight cannot be seen: closing then is the
    race every HTTP/1.1 server has (Go's Shutdown too), and the client sees a disconnect."""
    return (connection not in lifecycle.busy
            and not getattr(connection, "_messages", None)
            and not getattr(connection, "_request_in_progress", False))


async def stop(app: web.Application, runner: web.AppRunner, *, timeout: float, delay: float = 0.0) -> None:
    """Graceful shutdown: not ready; after ``delay`` s stop listening, close idle
    connections, let requests in flight finish (up to ``timeout`` s), then clean up."""
    lifecycle = app[LIFECYCLE]
    lifecycle.stopping = True
    log.info("shutting down", extra=fields(delay=delay, in_flight=sum(lifecycle.busy.values())))
    if delay > 0:
        # Lets endpoint removal reach every apiserver while requests are still answered
        # (each answer closes its connection, so clients move to another replica).
        await asyncio.sleep(delay)
    for site in runner.sites:
        await site.stop()
    # A request already read but not yet handed to its handler is not ``busy`` yet: let it
    # start before idle connections are closed (aiohttp's own cleanup yields here too).
    await asyncio.sleep(0)
    if runner.server is not None:
        for connection in runner.server.connections:
            if _idle(connection, lifecycle):
                connection.force_close()  # what aiohttp's own keep-alive timeout does
    # Requests in handlers, and requests aiohttp has read but not yet handed to one, finish
    # (each answer closes its connection), for at most ``timeout`` s.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while lifecycle.busy or (runner.server is not None
                             and not all(_idle(c, lifecycle) for c in runner.server.connections)):
        remaining = deadline - loop.time()
        if remaining <= 0:
            log.warning("requests still in flight at the shutdown timeout",
                        extra=fields(in_flight=sum(lifecycle.busy.values())))
            break
        if lifecycle.busy:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lifecycle.drained.wait(), remaining)
        else:
            await asyncio.sleep(0.01)  # a request read but not yet in its handler: it starts next
    await runner.cleanup()


async def serve(
    app: web.Application,
    *,
    host: str,
    port: int,
    ssl_context: ssl.SSLContext,
    shutdown_timeout: float = 25.0,
    shutdown_delay: float = 0.0,
    on_started: Callable[[int], None] | None = None,
    access_log: bool = False,
) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully (see the module docstring)."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    # The decision log already has one line per review; an access log line per request
    # too would double the volume on a busy cluster, so it is opt-in.
    runner, bound = await start(app, host=host, port=port, ssl_context=ssl_context,
                                shutdown_timeout=shutdown_timeout, access_log=access_log)
    log.info("serving", extra=fields(address=host, port=bound))
    if on_started is not None:
        on_started(bound)
    try:
        await stopping.wait()
    finally:
        await stop(app, runner, timeout=shutdown_timeout, delay=shutdown_delay)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("stopped")
