"""List and watch the watched kinds into a :class:`ClusterState`, as client-go reflectors do.

One :class:`Reflector` per kind, each on its own thread because the ``kubernetes`` client
blocks. A reflector:

1. discovers which of the kind's ``versions`` the apiserver serves
   (``GET /apis/<group>/<version>``); a kind with none is *unavailable* (its CRD is not
   installed, or RBAC forbids it) and is retried every ``unavailable_retry`` seconds;
2. lists it, page by page, and hands the whole list to ``state.replace`` so that nothing
   deleted while we were not watching survives, then marks the kind synced;
3. watches from the list's resourceVersion with bookmarks, remembering the last
   resourceVersion seen, and re-watches from it when the server ends the watch or the
   connection drops. Each watch asks the server to end it within the *confirmation
   interval*, so that even a kind nobody writes is resumed that often: the apiserver
   answering a resume from our resourceVersion proves the kind current (a quiet kind gets
   no bookmarks: kube-apiserver sends one only when its watch cache moved past the
   watch's resourceVersion). A watch the apiserver stops answering is never confirmed
   again, so the view ages until policies treat it as stale;
4. relists when the server says that resourceVersion is gone (HTTP 410, or an ERROR event
   carrying a 410 Status), and backs off exponentially with full jitter on connection
   errors, 429 and 5xx.

Threads never touch the view: every write is posted to the event loop with
``loop.call_soon_threadsafe``, so the loop that answers admissions never waits on the
network and decisions, which never await, always read a consistent view.

The confirmation interval is ``min(InformerConfig.watch_timeout, confirm_within())``; when
it shrinks (a policy with a smaller ``staleState.maxAgeSeconds`` is loaded), watches that
would outlive the new interval are cut and resumed at once.

Watch streams are read raw (``_preload_content``-style) and decoded line by line with
orjson: the typed models of the ``kubernetes`` client are slow and the rules want dicts.

Errors, from the reflector's point of view::

    _Unavailable   404 on discovery/list, 401/403  -> mark_unavailable, retry slowly
    _Gone          410 (HTTP or ERROR event)        -> relist now
    _Retryable     connection errors, 429, 5xx     -> backoff, re-watch from the last RV
    anything else  (a bug, a malformed answer)     -> logged, backoff, relist
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import kubernetes.client
import orjson
import urllib3
from kubernetes.client.exceptions import ApiException

from ..logs import fields
from .kinds import WATCHED_KINDS, WatchedKind
from .store import ClusterState

log = logging.getLogger("routewarden.informer")

EventHook = Callable[[str, str, "dict[str, Any] | None"], None]
"""``on_event(kind, type, obj)`` runs on the loop after each change to the view.

``type`` is ADDED, MODIFIED, DELETED, or SYNCED (a list replaced the kind; ``obj`` is None).
"""

_READ_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class InformerConfig:
    """Timings. Defaults follow client-go; tests shrink them."""

    watch_timeout: float = 300.0  # longest watch: server-side timeoutSeconds, jittered down to half this
    page_size: int = 500
    backoff_initial: float = 0.8
    backoff_max: float = 30.0
    unavailable_retry: float = 30.0  # jittered by +/- 25 %
    connect_timeout: float = 10.0
    request_timeout: float = 60.0  # read timeout for discovery and list pages
    read_margin: float = 30.0  # a watch read gives up this long (at most one interval) after its server timeout
    renew_check: float = 1.0  # how often a shrunken confirmation interval is looked for
    stop_timeout: float = 5.0


@dataclass
class KindStats:
    """What one reflector has been doing; read by telemetry and /readyz diagnostics."""

    kind: str
    version: str = ""
    resource_version: str = ""
    available: bool = False
    last_sync: float | None = None  # wall clock of the last completed list
    last_event: float | None = None
    lists: int = 0
    relists: int = 0
    watch_restarts: int = 0
    errors: int = 0
    events: int = 0
    bookmarks: int = 0
    last_error: str = ""


@dataclass
class InformerStats:
    """Per-kind counters, written by reflector threads, read anywhere (plain ints)."""

    kinds: dict[str, KindStats] = field(default_factory=dict)

    def of(self, kind: str) -> KindStats:
        stats = self.kinds.get(kind)
        if stats is None:
            stats = self.kinds[kind] = KindStats(kind)
        return stats


class _Unavailable(Exception):
    """The kind cannot be listed now: not served (``served=False``), or not allowed."""

    def __init__(self, message: str, *, served: bool = True) -> None:
        super().__init__(message)
        self.served = served


class _NotFound(Exception):
    """The served version went away (CRD deleted or upgraded): discover again."""


class _Gone(Exception):
    """Our resourceVersion is too old: only a fresh list can resync."""


class _Retryable(Exception):
    """A transient failure: back off, then re-watch from the last resourceVersion."""


class _Stopped(Exception):
    """The reflector was asked to stop while waiting on the network."""


# ------------------------------------------------------------------------------- HTTP
def _api_path(kind: WatchedKind, version: str) -> str:
    return f"/api/{version}" if not kind.group else f"/apis/{kind.group}/{version}"


def _raise_for_status(status: int, body: bytes, *, what: str) -> None:
    if 200 <= status < 300:
        return
    message = _status_message(body) or f"HTTP {status}"
    if status == 410:
        raise _Gone(f"{what}: {message}")
    if status == 404:
        raise _NotFound(f"{what}: {message}")
    if status in (401, 403):
        raise _Unavailable(f"{what}: HTTP {status}: {message}")
    if status == 429 or status >= 500:
        raise _Retryable(f"{what}: HTTP {status}: {message}")
    raise RuntimeError(f"{what}: HTTP {status}: {message}")


def _status_message(body: bytes) -> str:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode("utf-8", "replace")
    return str(doc.get("message", "")) if isinstance(doc, dict) else ""


def _lines(resp: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
    """Newline-delimited frames of a watch stream, as they arrive."""
    if resp.chunked:
        chunks: Iterable[bytes] = resp.stream(_READ_CHUNK, decode_content=True)
    else:
        chunks = iter(lambda: resp.read1(_READ_CHUNK), b"")
    rest = b""
    for chunk in chunks:
        if not chunk:
            continue
        parts = (rest + chunk).split(b"\n")
        rest = parts.pop()
        for part in parts:
            if part.strip():
                yield part
    if rest.strip():
        raise _Retryable("watch stream ended inside an event")


# --------------------------------------------------------------------------- Reflector
class Reflector:
    """Keeps one kind of the view in step with the apiserver, from its own thread."""

    def __init__(
        self,
        kind: WatchedKind,
        *,
        state: ClusterState,
        api_client: kubernetes.client.ApiClient,
        loop: asyncio.AbstractEventLoop,
        stats: InformerStats,
        config: InformerConfig = InformerConfig(),
        on_event: EventHook | None = None,
        confirm_within: Callable[[], float] | None = None,
    ) -> None:
        self.kind = kind
        self.state = state
        self.api = api_client
        self.loop = loop
        self.config = config
        self.on_event = on_event
        self.confirm_within = confirm_within
        self.stats = stats.of(kind.key)
        self.version: str | None = None
        self.resource_version: str | None = None
        self._stop = threading.Event()
        self._response: urllib3.BaseHTTPResponse | None = None
        self._watching: urllib3.BaseHTTPResponse | None = None  # the open watch, and when the server ends it
        self._watch_ends = 0.0
        self._renewing: urllib3.BaseHTTPResponse | None = None  # a watch cut by renew(), not by a fault
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.run, name=f"reflector-{kind.key}", daemon=True)
        self._attempt = 0
        self._gone_in_a_row = 0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end and unblock any read it is waiting in."""
        self._stop.set()
        with self._lock:
            resp = self._response
        if resp is not None:
            _shutdown(resp)

    def renew(self, interval: float) -> bool:
        """Cut the open watch if the server would keep it longer than ``interval`` from now;
        the thread resumes it at once from its resourceVersion, with the shorter interval."""
        with self._lock:
            resp = self._watching
            if resp is None or self._watch_ends <= time.monotonic() + interval:
                return False
            self._renewing = resp
        self._log("debug", "confirmation interval shrank; renewing the watch", interval=interval)
        _shutdown(resp)
        return True

    def confirm_interval(self) -> float:
        """The longest a healthy watch of this kind goes without being confirmed (seconds)."""
        interval = self.config.watch_timeout
        if self.confirm_within is not None:
            interval = min(interval, self.confirm_within())
        return max(interval, 1.0)

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    # ------------------------------------------------------------------ main loop
    def run(self) -> None:
        try:
            while not self.stopped:
                self._run_once()
        except _Stopped:
            pass
        self._log("debug", "reflector stopped")

    def _run_once(self) -> None:
        """One discover/list/watch pass, and what each way of failing leads to."""
        try:
            self._step()
        except _Unavailable as exc:
            self._unavailable(str(exc), served=exc.served)
        except _NotFound as exc:
            self.version = None
            self.resource_version = None
            delay = self._backoff()  # discovery and list disagreeing must not spin us
            self._log("warning", "served version went away; discovering again", error=str(exc),
                      backoff=round(delay, 3))
            self._sleep(delay)
        except _Gone as exc:
            self._gone(str(exc))
        except _Stopped:
            raise
        except (_Retryable, urllib3.exceptions.HTTPError, OSError, ApiException) as exc:
            if self.stopped:
                raise _Stopped from exc
            self._error(exc, relist=False)
        except Exception as exc:
            if self.stopped:
                raise _Stopped from exc
            self._error(exc, relist=True)

    def _step(self) -> None:
        if self.version is None:
            self.version = self._discover()
            self.stats.version = self.version
        if self.resource_version is None:
            self._list()
        self._watch()

    # ------------------------------------------------------------------ outcomes
    def _unavailable(self, reason: str, *, served: bool) -> None:
        if not served and self.stats.lists:
            # The CRD was deleted, and its objects with it. (A 403 says nothing about
            # the objects, so then the last view is kept and the kind marked unavailable.)
            self._post(self._replace_unsynced, [])
        self.version = None
        self.resource_version = None
        self.stats.available = False
        self.stats.last_error = reason
        self._post(self.state.mark_unavailable, self.kind.kind, reason)
        delay = self.config.unavailable_retry * random.uniform(0.75, 1.25)
        self._log("warning", "kind unavailable; will retry", reason=reason, retry_in=round(delay, 3))
        self._sleep(delay)

    def _gone(self, reason: str) -> None:
        self.resource_version = None
        self.stats.relists += 1
        self._gone_in_a_row += 1
        self._log("info", "resourceVersion expired; relisting", reason=reason)
        if self._gone_in_a_row > 1:  # a server that keeps answering 410 must not spin us
            self._sleep(self._backoff())

    def _error(self, exc: BaseException, *, relist: bool) -> None:
        self.stats.errors += 1
        self.stats.last_error = f"{type(exc).__name__}: {exc}"
        if relist and self.resource_version is not None:
            self.resource_version = None
            self.stats.relists += 1
        delay = self._backoff()
        self._log(
            "warning",
            "list/watch failed; backing off",
            error=self.stats.last_error,
            backoff=round(delay, 3),
            relist=relist,
            exc_info=relist,  # an unexpected error: keep the traceback
        )
        self._sleep(delay)

    def _backoff(self) -> float:
        """Exponential backoff with full jitter (AWS architecture blog), capped."""
        ceiling = min(self.config.backoff_max, self.config.backoff_initial * 2**self._attempt)
        self._attempt = min(self._attempt + 1, 30)
        return random.uniform(0, ceiling)

    def _sleep(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise _Stopped

    # ------------------------------------------------------------------ discovery
    def _discover(self) -> str:
        """The first of the kind's versions whose resource list names our plural."""
        tried = []
        for version in self.kind.versions:
            path = _api_path(self.kind, version)
            status, body = self._get(path)
            if status == 404:
                tried.append(version)
                continue
            _raise_for_status(status, body, what=f"discovery {path}")
            resources = orjson.loads(body).get("resources") or []
            if any(r.get("name") == self.kind.plural for r in resources):
                return version
            tried.append(version)
        group = self.kind.group or "core"
        raise _Unavailable(f"{self.kind.plural}.{group} is not served in {', '.join(tried)}", served=False)

    # ------------------------------------------------------------------ list
    def _collection(self) -> str:
        assert self.version is not None
        if self.kind.namespace:
            return f"{_api_path(self.kind, self.version)}/namespaces/{self.kind.namespace}/{self.kind.plural}"
        return f"{_api_path(self.kind, self.version)}/{self.kind.plural}"

    def _selectors(self) -> list[tuple[str, str]]:
        query = []
        if self.kind.label_selector:
            query.append(("labelSelector", self.kind.label_selector))
        if self.kind.field_selector:
            query.append(("fieldSelector", self.kind.field_selector))
        return query

    def _kept(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """What the view holds of ``obj`` (the kind's ``keep``), or None for nothing."""
        return obj if self.kind.keep is None else self.kind.keep(obj)

    def _scoped(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A namespace's watch replaces that namespace only: the kind's other namespaces stay."""
        if not self.kind.namespace:
            return items
        others = [o for o in self.state.objects(self.kind.kind)
                  if (o.get("metadata") or {}).get("namespace") != self.kind.namespace]
        return others + items

    def _list(self) -> None:
        """A full, paginated list, then a replace: the view holds exactly the server's truth."""
        items: list[dict[str, Any]] = []
        token = ""
        api_version = f"{self.kind.group}/{self.version}" if self.kind.group else str(self.version)
        while True:
            query: list[tuple[str, str]] = [("limit", str(self.config.page_size))]
            if token:
                query.append(("continue", token))
            query += self._selectors()
            status, body = self._get(self._collection(), query)
            if status == 404:
                raise _NotFound(f"list {self._collection()}")
            _raise_for_status(status, body, what=f"list {self._collection()}")
            page = orjson.loads(body)
            for item in page.get("items") or ():
                item.setdefault("apiVersion", api_version)
                item.setdefault("kind", self.kind.kind)
                kept = self._kept(item)
                if kept is not None:
                    items.append(kept)
            meta = page.get("metadata") or {}
            token = meta.get("continue") or ""
            if not token:
                break
        rv = str(meta.get("resourceVersion") or "")
        first = self.stats.lists == 0
        self.resource_version = rv
        self.stats.lists += 1
        self.stats.available = True
        self.stats.resource_version = rv
        self.stats.last_sync = time.time()
        self._attempt = 0
        self._gone_in_a_row = 0
        self._post(self._replace, items, rv)
        self._log("info", "listed" if first else "relisted", objects=len(items), resource_version=rv)

    def _replace_unsynced(self, items: list[dict[str, Any]]) -> None:
        with self._guard("replace"):
            self.state.replace(self.kind.kind, self._scoped(items))
        self._notify("SYNCED", None)

    def _replace(self, items: list[dict[str, Any]], rv: str) -> None:
        with self._guard("replace"):
            self.state.replace(self.kind.kind, self._scoped(items), rv)
            self.state.mark_synced(self.kind.kind)
        self._notify("SYNCED", None)

    # ------------------------------------------------------------------ watch
    def _watch(self) -> None:
        """One watch request, streamed until the server ends it or something breaks.

        The server is asked to end it within the confirmation interval (jittered down to
        half, so that kinds do not resume in step), and the read gives up a margin later.
        """
        interval = self.confirm_interval()
        timeout = max(1, int(interval * random.uniform(0.5, 1.0)))
        query = [
            ("watch", "true"),
            ("resourceVersion", str(self.resource_version)),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(timeout)),
        ]
        query += self._selectors()
        margin = min(self.config.read_margin, interval)
        resp = self._open(self._collection(), query, read_timeout=timeout + margin)
        complete = False
        try:
            if resp.status != 200:
                body = resp.read()
                if resp.status == 404:
                    raise _NotFound(f"watch {self._collection()}")
                _raise_for_status(resp.status, body, what=f"watch {self._collection()}")
            with self._lock:
                self._watching, self._watch_ends = resp, time.monotonic() + timeout
            # The server resumed from our resourceVersion: what it has not sent yet comes
            # first on this stream, so the kind is current as of now.
            self._post(self.state.mark_alive, self.kind.kind)
            for seen, line in enumerate(_lines(resp)):
                self._handle(orjson.loads(line))
                if seen == 0:
                    self._attempt = 0  # a stream that delivers is healthy again
            complete = True
        except Exception:
            if not self._renewed(resp):
                raise
        finally:
            renewed = self._renewed(resp)
            with self._lock:
                self._watching = None
                if renewed:
                    self._renewing = None
            self._close(resp, reuse=complete and not renewed)
        self.stats.watch_restarts += 1
        self._log("debug", "watch ended; re-watching", resource_version=self.resource_version)

    def _renewed(self, resp: urllib3.BaseHTTPResponse) -> bool:
        with self._lock:
            return self._renewing is resp and not self.stopped

    def _handle(self, event: dict[str, Any]) -> None:
        kind = self.kind.kind
        etype = event.get("type")
        obj = event.get("object") or {}
        if etype == "ERROR":
            code = obj.get("code")
            message = f"watch ERROR event: {obj.get('reason', '')} {obj.get('message', '')}".strip()
            if code == 410:
                raise _Gone(message)
            if code == 429 or (isinstance(code, int) and code >= 500):
                raise _Retryable(message)
            raise RuntimeError(message)
        rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        if etype == "BOOKMARK":
            self.stats.bookmarks += 1
        else:
            self.stats.events += 1
            self.stats.last_event = time.time()
        if etype in ("ADDED", "MODIFIED"):
            kept = self._kept(obj)
            if kept is None:  # does not (or no longer) qualify for the view
                self._post(self._remove, obj)
            else:
                self._post(self._apply, etype, kept)
        elif etype == "DELETED":
            self._post(self._remove, obj)
        elif etype != "BOOKMARK":
            raise RuntimeError(f"unknown watch event type {etype!r}")
        if rv:
            self.resource_version = rv
            self.stats.resource_version = rv
            self._post(self.state.set_resource_version, kind, rv)
        if etype == "BOOKMARK":  # the server vouches the view is current up to rv
            self._post(self.state.mark_alive, kind)

    def _apply(self, etype: str, obj: dict[str, Any]) -> None:
        with self._guard("apply", obj):
            self.state.apply(self.kind.kind, obj)
        self._notify(etype, obj)

    def _remove(self, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        with self._guard("remove", obj):
            self.state.remove(self.kind.kind, meta.get("namespace") or "", meta.get("name") or "")
        self._notify("DELETED", obj)

    @contextlib.contextmanager
    def _guard(self, action: str, obj: dict[str, Any] | None = None) -> Iterator[None]:
        """Log, rather than lose in the loop's exception handler, a write the view refused."""
        try:
            yield
        except Exception:
            meta = (obj or {}).get("metadata") or {}
            log.exception(
                "cluster view refused a write",
                extra=fields(kind=self.kind.kind, action=action,
                             namespace=meta.get("namespace", ""), name=meta.get("name", "")),
            )

    def _notify(self, etype: str, obj: dict[str, Any] | None) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(self.kind.kind, etype, obj)
        except Exception:
            log.exception("on_event hook failed", extra=fields(kind=self.kind.kind))

    # ------------------------------------------------------------------ plumbing
    def _post(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the event loop; all view writes go through here."""
        if self.stopped:
            raise _Stopped
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError as exc:  # the loop is closed: we are shutting down
            raise _Stopped from exc

    def _open(
        self, path: str, query: list[tuple[str, str]] | None = None, *, read_timeout: float
    ) -> urllib3.BaseHTTPResponse:
        if self.stopped:
            raise _Stopped
        method, url, headers, _, _ = self.api.param_serialize(
            method="GET",
            resource_path=path,
            query_params=query or [],
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        rest = self.api.call_api(
            method, url, header_params=headers, _request_timeout=(self.config.connect_timeout, read_timeout)
        )
        resp: urllib3.BaseHTTPResponse = rest.response
        with self._lock:
            self._response = resp
        if self.stopped:  # stop() ran between the request and the line above
            self._close(resp, reuse=False)
            raise _Stopped
        return resp

    def _get(self, path: str, query: list[tuple[str, str]] | None = None) -> tuple[int, bytes]:
        resp = self._open(path, query, read_timeout=self.config.request_timeout)
        body, complete = b"", False
        try:
            body = resp.read()
            complete = True
        finally:
            self._close(resp, reuse=complete)
        return resp.status, body

    def _close(self, resp: urllib3.BaseHTTPResponse, *, reuse: bool) -> None:
        """Give a fully read connection back to the pool; drop a broken one."""
        with self._lock:
            if self._response is resp:
                self._response = None
        if reuse:
            resp.release_conn()
        else:
            resp.close()

    def _log(self, level: str, message: str, *, exc_info: bool = False, **values: Any) -> None:
        getattr(log, level)(
            message,
            exc_info=exc_info,
            extra=fields(kind=self.kind.kind, version=self.version or "", **values),
        )


def _shutdown(resp: urllib3.BaseHTTPResponse) -> None:
    """Unblock a thread reading ``resp`` (urllib3 >= 2.3 can shut the socket down)."""
    try:
        shutdown = getattr(resp, "shutdown", None)
        if shutdown is not None:
            shutdown()
        else:  # pragma: no cover - older urllib3
            resp.close()
    except Exception:
        log.debug("closing a response while stopping failed", exc_info=True)


# ------------------------------------------------------------------------ entry point
def _pooled_client(api_client: kubernetes.client.ApiClient, size: int) -> kubernetes.client.ApiClient:
    """A client sharing ``api_client``'s settings with room for one connection per watch."""
    config = copy.deepcopy(api_client.configuration)
    config.connection_pool_maxsize = max(config.connection_pool_maxsize or 0, size)
    client = kubernetes.client.ApiClient(configuration=config)
    client.default_headers.update(api_client.default_headers)
    return client


async def run_informers(
    state: ClusterState,
    *,
    api_client: kubernetes.client.ApiClient,
    kinds: Iterable[WatchedKind] = WATCHED_KINDS,
    loop: asyncio.AbstractEventLoop | None = None,
    on_event: EventHook | None = None,
    stats: InformerStats | None = None,
    config: InformerConfig = InformerConfig(),
    confirm_within: Callable[[], float] | None = None,
) -> None:
    """Keep ``state`` in step with the cluster until cancelled.

    ``confirm_within()`` is the longest a healthy watch may go unconfirmed (capped by
    ``config.watch_timeout``); it is read at every watch, and checked every
    ``config.renew_check`` seconds so that a shorter interval applies at once.

    Cancel the task to stop: every reflector thread is told to stop, its open stream is
    shut down, and this coroutine waits (up to ``config.stop_timeout``) for them to end.
    """
    loop = loop or asyncio.get_running_loop()
    kinds = tuple(kinds)
    stats = stats if stats is not None else InformerStats()
    state.expect(k.kind for k in kinds)
    client = _pooled_client(api_client, len(kinds) + 4)
    reflectors = [
        Reflector(k, state=state, api_client=client, loop=loop, stats=stats, config=config, on_event=on_event,
                  confirm_within=confirm_within)
        for k in kinds
    ]
    log.info("starting informers", extra=fields(kinds=[k.kind for k in kinds]))
    try:
        for reflector in reflectors:
            reflector.start()
        while True:  # until cancelled
            await asyncio.sleep(config.renew_check)
            for reflector in reflectors:
                reflector.renew(reflector.confirm_interval())
    finally:
        for reflector in reflectors:
            reflector.stop()
        deadline = time.monotonic() + config.stop_timeout

        def join_all() -> list[str]:
            return [
                r.kind.kind for r in reflectors if not r.join(max(0.0, deadline - time.monotonic()))
            ]

        stuck = await asyncio.shield(asyncio.to_thread(join_all))
        if stuck:
            log.warning("reflector threads still running after stop", extra=fields(kinds=stuck))
        client.close()
        log.info("informers stopped")
