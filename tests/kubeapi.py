"""A small in-process kube-apiserver for tests: the list/watch wire protocol, for real.

It serves whatever resources are registered (any group/version/plural) over HTTP (or
HTTPS when given an SSLContext) on 127.0.0.1, so the real ``kubernetes`` client can talk
to it:

- discovery: ``/api``, ``/api/v1``, ``/apis``, ``/apis/<group>/<version>``;
- list with ``limit``/``continue`` (consistent pages, expiring on compaction),
  ``labelSelector`` (equality and existence terms) and ``fieldSelector`` (equality);
- watch (``?watch=true``): chunked, one JSON event per line, a bounded event history
  to resume from, ``BOOKMARK`` events (only on request, and, as kube-apiserver, only to
  a watch the resourceVersion has moved past: a kind nobody writes gets none), an
  ``ERROR`` event with a 410 Status when the requested resourceVersion is older than
  the history (or HTTP 410, if asked), the end of the stream at ``timeoutSeconds``;
- single objects: GET, POST (create), PUT (update, with resourceVersion conflicts),
  PATCH (merge, strategic-merge treated as merge, JSON patch), DELETE;
- field ownership (``metadata.managedFields``) and server-side apply as kube-apiserver
  does them, at the granularity of map keys (lists are atomic): an Update takes the
  fields it changes, an Apply owns exactly what it sends, removes what it owned and no
  longer sends (unless another manager owns it too), refuses with 409 and
  ``FieldManagerConflict`` causes to change a value another manager owns unless
  ``force=true``, honours a ``resourceVersion`` precondition and ``dryRun=All``, and
  writes nothing when nothing changes;
- a watch with a selector sees an object that starts matching as ADDED and one that
  stops matching as DELETED, as the watch cache sends them;
- faults: drop open watches mid-event, answer an HTTP error N times, delay answers,
  CRDs that 404 until :meth:`FakeKubeAPI.install`, and a frozen server
  (:meth:`FakeKubeAPI.freeze`, as a SIGSTOPped kube-apiserver: connections are accepted
  and kept open, nothing is answered, open watches neither deliver nor end).

Objects live under (group, plural, namespace, name) and are served in any registered
version of their resource. Every change bumps one global resourceVersion, as etcd does.

Use it on the test's event loop (``async with FakeKubeAPI() as api``); code that calls
the blocking client must then run in threads. Or run it on its own loop thread with
:meth:`FakeKubeAPI.in_thread`, for tests that call the client synchronously. Mutators
(create, update, delete, ...) may be called from any thread.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import json
import ssl
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import jsonpatch
from aiohttp import web

from webhook.state.kinds import WATCHED_KINDS

Obj = dict[str, Any]


@dataclass
class Resource:
    """A registered resource: a kind, where it is served, and whether it is installed."""

    kind: str
    group: str
    versions: tuple[str, ...]
    plural: str
    namespaced: bool = True
    installed: bool = True

    def api_version(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version


@dataclass
class _Event:
    rv: int
    type: str
    resource: Resource
    obj: Obj
    old: Obj | None = None  # the previous version, for selector transitions


@dataclass(frozen=True)
class Call:
    """One request as the fake saw it: when, what, and who (the bearer token)."""

    at: float  # time.monotonic()
    method: str
    path: str
    query: dict[str, str]
    token: str
    content_type: str


@dataclass
class _Fault:
    status: int
    remaining: int
    match: Callable[[web.Request], bool]


@dataclass(eq=False)
class _Watcher:
    resource: Resource
    version: str
    namespace: str | None
    selector: list[tuple[str, str, str]]
    bookmarks: bool
    fields: list[tuple[str, str, str]] = field(default_factory=list)
    rv: int = 0  # the newest resourceVersion the watch has been sent at its start
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    dropped: bool = False

    def _matches(self, obj: Obj | None) -> bool:
        if obj is None:
            return False
        meta = obj.get("metadata") or {}
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        return _selects(self.selector, meta.get("labels") or {}) and _fields_match(self.fields, obj)

    def view(self, event: _Event) -> _Event | None:
        """The event as this watch sees it (selector transitions become ADDED or DELETED), or None."""
        if event.resource is not self.resource:
            return None
        now, before = self._matches(event.obj), self._matches(event.old)
        if event.type != "MODIFIED" or now == before:
            return event if now else None
        if now:
            return _Event(event.rv, "ADDED", event.resource, event.obj)
        # As the watch cache: the version that last matched, at the new resourceVersion.
        gone = copy.deepcopy(event.old or {})
        gone.setdefault("metadata", {})["resourceVersion"] = str(event.rv)
        return _Event(event.rv, "DELETED", event.resource, gone)

    def wants(self, event: _Event) -> bool:
        return self.view(event) is not None


_DROP = object()
_BOOKMARK = object()


class FakeKubeAPI:
    """A kube-apiserver double that speaks the real protocol; see the module docstring."""

    def __init__(self, *, history: int = 1000, ssl_context: ssl.SSLContext | None = None) -> None:
        self.resources: dict[str, Resource] = {}
        self._objects: dict[tuple[str, str], dict[tuple[str, str], Obj]] = {}
        self._rv = 1
        self._history: deque[_Event] = deque(maxlen=history)
        self._oldest_rv = 1  # a watch from an RV older than this gets 410 Gone
        self._watchers: set[_Watcher] = set()
        self._faults: list[_Fault] = []
        self._snapshots: dict[str, tuple[int, list[Obj]]] = {}
        self.delay = 0.0  # seconds added before every answer
        self.watch_gone_as_http = False  # answer a too-old watch with HTTP 410, as old servers did
        self.list_gone_on_stale = True  # a list with an explicit, compacted resourceVersion gets 410
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.authorizations: list[str] = []  # the Authorization header of each request ("" if none)
        self.calls: list[Call] = []
        self._ssl = ssl_context
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thawed: asyncio.Event | None = None  # cleared while the server is frozen
        self.url = ""

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> str:
        self._thawed = asyncio.Event()
        self._thawed.set()
        app = web.Application(middlewares=[self._middleware], client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._ssl)
        await site.start()
        port = self._runner.addresses[0][1]
        self._loop = asyncio.get_running_loop()
        self.url = f"{'https' if self._ssl else 'http'}://127.0.0.1:{port}"
        return self.url

    async def close(self) -> None:
        if self._thawed is not None:
            self._thawed.set()
        for watcher in list(self._watchers):
            watcher.queue.put_nowait(None)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @contextlib.contextmanager
    def in_thread(self) -> Iterator[FakeKubeAPI]:
        """Serve from a loop of its own in a background thread (for synchronous tests)."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="fake-kube-api", daemon=True)
        thread.start()
        asyncio.run_coroutine_threadsafe(self.start(), loop).result(10)
        try:
            yield self
        finally:
            asyncio.run_coroutine_threadsafe(self.close(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()

    def write_kubeconfig(self, path: Path) -> Path:
        """A kubeconfig for this server (plain HTTP, a bearer token nobody checks) at ``path``."""
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": "t"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
        }))
        return path

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` on the server's loop (watch queues belong to it) and return its result."""
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop or not loop.is_running():
            return fn(*args, **kwargs)

        async def call() -> Any:
            return fn(*args, **kwargs)

        return asyncio.run_coroutine_threadsafe(call(), loop).result(10)

    # ------------------------------------------------------------------ registration
    def register(
        self,
        kind: str,
        *,
        group: str,
        versions: tuple[str, ...] | str,
        plural: str,
        namespaced: bool = True,
        installed: bool = True,
    ) -> Resource:
        versions = (versions,) if isinstance(versions, str) else tuple(versions)
        res = Resource(kind, group, versions, plural, namespaced, installed)
        self.resources[kind] = res
        self._objects.setdefault((group, plural), {})
        return res

    def register_watched(self, *, installed: bool = True, kinds=WATCHED_KINDS) -> None:
        """Everything routewarden watches; Gateway API kinds served at their newest version."""
        for k in kinds:
            self.register(
                k.kind,
                group=k.group,
                versions=k.versions[:1],
                plural=k.plural,
                namespaced=k.namespaced,
                installed=installed or not k.group,
            )

    def register_defaults(self) -> None:
        """Core and admissionregistration resources a webhook manages for itself."""
        self.register("Namespace", group="", versions="v1", plural="namespaces", namespaced=False)
        self.register("Secret", group="", versions="v1", plural="secrets")
        self.register("ConfigMap", group="", versions="v1", plural="configmaps")
        self.register("Service", group="", versions="v1", plural="services")
        self.register("Lease", group="coordination.k8s.io", versions="v1", plural="leases")
        for kind, plural in (
            ("ValidatingWebhookConfiguration", "validatingwebhookconfigurations"),
            ("MutatingWebhookConfiguration", "mutatingwebhookconfigurations"),
        ):
            self.register(kind, group="admissionregistration.k8s.io", versions="v1", plural=plural,
                          namespaced=False)

    def install(self, kind: str) -> None:
        """The CRD appears: its group/version is served from now on."""
        self.resources[kind].installed = True

    def uninstall(self, kind: str) -> None:
        """The CRD is deleted, and its objects with it (watches end, as on a real server)."""
        def run() -> None:
            res = self.resources[kind]
            res.installed = False
            self._objects[(res.group, res.plural)].clear()
            for watcher in list(self._watchers):
                if watcher.resource is res:
                    watcher.queue.put_nowait(None)
        self._call(run)

    # ------------------------------------------------------------------ the truth
    @property
    def resource_version(self) -> int:
        return self._rv

    def objects(self, kind: str) -> list[Obj]:
        res = self.resources[kind]
        return [copy.deepcopy(o) for o in self._objects[(res.group, res.plural)].values()]

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        res = self.resources[kind]
        obj = self._objects[(res.group, res.plural)].get((namespace or "", name))
        return copy.deepcopy(obj) if obj is not None else None

    def truth(self, kind: str) -> dict[tuple[str, str], str]:
        """(namespace, name) -> resourceVersion of every stored object of ``kind``."""
        res = self.resources[kind]
        return {k: o["metadata"]["resourceVersion"] for k, o in self._objects[(res.group, res.plural)].items()}

    @property
    def open_watches(self) -> int:
        return len(self._watchers)

    # ------------------------------------------------------------------ mutators
    def create(self, kind: str, obj: Obj, *, manager: str | None = None) -> Obj:
        """Create ``obj``; with ``manager``, its fields are owned by that field manager."""
        return self._call(self._create, self.resources[kind], copy.deepcopy(obj), manager=manager)

    def update(self, kind: str, obj: Obj, *, manager: str | None = None) -> Obj:
        """Replace ``obj``; with ``manager``, the fields it changes are owned by that field manager."""
        return self._call(self._update, self.resources[kind], copy.deepcopy(obj), manager=manager)

    def apply(self, kind: str, obj: Obj) -> Obj:
        """Create or update, whichever is needed."""
        meta = obj.get("metadata") or {}
        if self.get(kind, meta.get("namespace", ""), meta["name"]) is None:
            return self.create(kind, obj)
        return self.update(kind, obj)

    def delete(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self._call(self._delete, self.resources[kind], namespace or "", name)

    def compact(self) -> None:
        """Forget the event history and list snapshots: a watch from any older
        resourceVersion, and every outstanding continue token, now get 410."""
        def run() -> None:
            self._history.clear()
            self._snapshots.clear()
            self._oldest_rv = self._rv
        self._call(run)

    def drop_watches(self, *, partial: bool = True) -> int:
        """Cut every open watch now (after half an event, if ``partial``); events not yet
        written are never sent on them. Returns how many were cut."""
        def run() -> int:
            cut = 0
            for watcher in list(self._watchers):
                watcher.dropped = True
                while not watcher.queue.empty():
                    watcher.queue.get_nowait()
                watcher.queue.put_nowait(_DROP if partial else None)
                cut += 1
            return cut
        return self._call(run)

    def send_bookmarks(self) -> None:
        """A BOOKMARK with the current resourceVersion on every watch that allows them and
        that this resourceVersion is newer than the one the watch started at.

        kube-apiserver's watch cache sends a bookmark about once a minute, and just before
        the watch's timeout, but only once its own resourceVersion has moved past the
        watch's: an event of the kind, or etcd's progress notification (every 10 minutes
        by default). Calling this is that moment; a kind nobody writes gets no bookmark.
        """
        def run() -> None:
            for watcher in self._watchers:
                if watcher.bookmarks and not watcher.dropped and self._rv > watcher.rv:
                    watcher.queue.put_nowait(_BOOKMARK)
        self._call(run)

    def freeze(self) -> None:
        """Stop answering, as a kube-apiserver stopped with SIGSTOP: connections are still
        accepted and kept open, requests wait unanswered, open watches send nothing and do
        not end at their timeout."""
        self._call(self._frozen_event().clear)

    def thaw(self) -> None:
        """Answer again (SIGCONT): waiting requests are served, overdue watches end."""
        self._call(self._frozen_event().set)

    @property
    def frozen(self) -> bool:
        return not self._frozen_event().is_set()

    def _frozen_event(self) -> asyncio.Event:
        if self._thawed is None:
            raise RuntimeError("the fake apiserver is not started")
        return self._thawed

    def fail_next(self, count: int, *, status: int = 500, match: str | Callable[[web.Request], bool] = "") -> None:
        """Answer the next ``count`` requests matching ``match`` (a substring of the path and
        query, or a predicate) with HTTP ``status``."""
        if isinstance(match, str):
            text = match
            predicate: Callable[[web.Request], bool] = lambda r: text in str(r.rel_url)
        else:
            predicate = match
        self._call(self._faults.append, _Fault(status, count, predicate))

    def clear_faults(self) -> None:
        self._call(self._faults.clear)

    # ------------------------------------------------------------------ storage
    def _bump(self) -> int:
        self._rv += 1
        return self._rv

    def _record(self, etype: str, res: Resource, obj: Obj, old: Obj | None = None) -> None:
        event = _Event(self._rv, etype, res, copy.deepcopy(obj), old)
        if len(self._history) == self._history.maxlen:
            self._oldest_rv = self._history[0].rv
        self._history.append(event)
        for watcher in self._watchers:
            seen = None if watcher.dropped else watcher.view(event)
            if seen is not None:
                watcher.queue.put_nowait(seen)

    def _create(self, res: Resource, obj: Obj, namespace: str | None = None, *, manager: str | None = None,
                operation: str = "Update", dry_run: bool = False) -> Obj:
        meta = obj.setdefault("metadata", {})
        if res.namespaced:
            meta["namespace"] = namespace or meta.get("namespace") or "default"
        else:
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        if not meta.get("name"):
            raise APIError(422, "Invalid", "metadata.name: Required value")
        store = self._objects[(res.group, res.plural)]
        key = (meta.get("namespace", ""), meta["name"])
        if key in store:
            raise APIError(409, "AlreadyExists", f'{res.plural} "{meta["name"]}" already exists')
        if meta.get("resourceVersion"):
            raise APIError(422, "Invalid", f'{res.kind} "{meta["name"]}" is invalid: metadata.resourceVersion: '
                                           "Invalid value: 0: must be empty")
        obj.setdefault("apiVersion", res.api_version(res.versions[0]))
        obj["kind"] = res.kind
        if manager:
            _set_managed_fields(obj, {(manager, operation): set(_leaves(obj))}, obj["apiVersion"])
        if dry_run:
            return copy.deepcopy(obj)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        meta["generation"] = 1
        meta["resourceVersion"] = str(self._bump())
        store[key] = obj
        self._record("ADDED", res, obj)
        return copy.deepcopy(obj)

    def _update(self, res: Resource, obj: Obj, *, manager: str | None = None) -> Obj:
        meta = obj.setdefault("metadata", {})
        store = self._objects[(res.group, res.plural)]
        key = (meta.get("namespace", "") if res.namespaced else "", meta.get("name", ""))
        old = store.get(key)
        if old is None:
            raise APIError(404, "NotFound", f'{res.plural} "{key[1]}" not found')
        sent_rv = meta.get("resourceVersion")
        if sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
            raise APIError(409, "Conflict", "the object has been modified; please apply your changes "
                                              "to the latest version and try again")
        for immutable in ("uid", "creationTimestamp", "generation"):
            meta[immutable] = old["metadata"][immutable]
        owners = _owners(obj if "managedFields" in meta else old)  # none sent: the stored ones stay
        if manager:
            _take(owners, (manager, "Update"), old, obj)
        _set_managed_fields(obj, owners, obj.get("apiVersion") or old.get("apiVersion"))
        if obj.get("spec") != old.get("spec"):
            meta["generation"] = old["metadata"]["generation"] + 1
        obj["kind"] = res.kind
        obj.setdefault("apiVersion", old.get("apiVersion"))
        meta["resourceVersion"] = str(self._bump())
        store[key] = obj
        self._record("MODIFIED", res, obj, copy.deepcopy(old))
        return copy.deepcopy(obj)

    def _delete(self, res: Resource, namespace: str, name: str) -> Obj | None:
        store = self._objects[(res.group, res.plural)]
        obj = store.pop((namespace if res.namespaced else "", name), None)
        if obj is None:
            return None
        obj["metadata"]["resourceVersion"] = str(self._bump())
        self._record("DELETED", res, obj)
        return copy.deepcopy(obj)

    # ------------------------------------------------------------------ HTTP
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        await self._frozen_event().wait()
        self.requests.append((request.method, request.path, dict(request.query)))
        self.authorizations.append(request.headers.get("Authorization", ""))
        self.calls.append(Call(time.monotonic(), request.method, request.path, dict(request.query),
                               request.headers.get("Authorization", "").removeprefix("Bearer "),
                               request.content_type))
        if self.delay:
            await asyncio.sleep(self.delay)
        for fault in self._faults:
            if fault.remaining > 0 and fault.match(request):
                fault.remaining -= 1
                return _status(fault.status, "InternalError" if fault.status >= 500 else "Injected",
                               f"injected fault {fault.status}")
        try:
            return await handler(request)
        except APIError as exc:
            return _status(exc.code, exc.reason, exc.message, exc.causes)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        if parts == ["version"]:
            return _json({"major": "1", "minor": "36", "gitVersion": "v1.36.2-fake", "gitCommit": "0" * 40,
                          "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.25",
                          "compiler": "gc", "platform": "linux/amd64"})
        if parts == ["api"]:
            return _json({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
        if parts == ["apis"]:
            return _json(self._group_list())
        if parts[:1] == ["api"] and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise APIError(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            return self._resource_list(group, version)
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        if len(rest) > 2:
            raise APIError(404, "NotFound", "subresources are not served")
        res = self._find(group, version, rest[0])
        if namespace is not None and not res.namespaced:
            raise APIError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) == 2 else None
        return await self._serve(request, res, version, namespace, name)

    def _find(self, group: str, version: str, plural: str) -> Resource:
        for res in self.resources.values():
            if res.group == group and res.plural == plural and version in res.versions and res.installed:
                return res
        raise APIError(404, "NotFound", "the server could not find the requested resource")

    def _group_list(self) -> Obj:
        groups: dict[str, list[str]] = {}
        for res in self.resources.values():
            if res.group and res.installed:
                versions = groups.setdefault(res.group, [])
                versions.extend(v for v in res.versions if v not in versions)
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": g,
                    "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                    "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]},
                }
                for g, vs in sorted(groups.items())
            ],
        }

    def _resource_list(self, group: str, version: str) -> web.Response:
        served = [r for r in self.resources.values()
                  if r.group == group and version in r.versions and r.installed]
        if not served:
            raise APIError(404, "NotFound", "the server could not find the requested resource")
        verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
        return _json({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": [
                {"name": r.plural, "singularName": r.kind.lower(), "namespaced": r.namespaced,
                 "kind": r.kind, "verbs": verbs}
                for r in served
            ],
        })

    async def _serve(
        self, request: web.Request, res: Resource, version: str, namespace: str | None, name: str | None
    ) -> web.StreamResponse:
        method = request.method
        if name is None and method == "GET":
            if request.query.get("watch") in ("true", "1"):
                return await self._watch(request, res, version, namespace)
            return self._list(request, res, version, namespace)
        manager = _manager(request)
        if name is None and method == "POST":
            obj = await request.json()
            return _json(self._render(self._create(res, obj, namespace, manager=manager), res, version), status=201)
        if name is None:
            raise APIError(405, "MethodNotAllowed", f"{method} on a collection")
        key_ns = namespace or ""
        current = self._objects[(res.group, res.plural)].get((key_ns, name))
        if method == "GET":
            if current is None:
                raise APIError(404, "NotFound", f'{res.plural} "{name}" not found')
            return _json(self._render(current, res, version))
        if method == "DELETE":
            deleted = self._delete(res, key_ns, name)
            if deleted is None:
                raise APIError(404, "NotFound", f'{res.plural} "{name}" not found')
            return _json(self._render(deleted, res, version))
        if method == "PUT":
            obj = await request.json()
            obj.setdefault("metadata", {}).update(name=name)
            if res.namespaced:
                obj["metadata"]["namespace"] = key_ns
            return _json(self._render(self._update(res, obj, manager=manager), res, version))
        if method == "PATCH":
            return await self._patch(request, res, version, key_ns, name, current)
        raise APIError(405, "MethodNotAllowed", method)

    async def _patch(
        self, request: web.Request, res: Resource, version: str, namespace: str, name: str, current: Obj | None
    ) -> web.Response:
        ctype = request.content_type
        body = await request.read()
        if ctype == "application/apply-patch+yaml":
            return self._apply_patch(request, res, version, namespace, name, current, body)
        if current is None:
            raise APIError(404, "NotFound", f'{res.plural} "{name}" not found')
        patch = json.loads(body)
        if ctype == "application/json-patch+json":
            try:
                patched = jsonpatch.apply_patch(current, patch)
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
                raise APIError(422, "Invalid", str(exc)) from exc
        elif ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            patched = _merge(current, patch)
        else:
            raise APIError(415, "UnsupportedMediaType", f"unsupported patch type {ctype}")
        patched.setdefault("metadata", {}).pop("resourceVersion", None)
        return _json(self._render(self._update(res, patched, manager=_manager(request)), res, version))

    def _apply_patch(self, request: web.Request, res: Resource, version: str, namespace: str, name: str,
                     current: Obj | None, body: bytes) -> web.Response:
        """Server-side apply, with field ownership (see the module docstring)."""
        import yaml  # apply bodies are YAML (JSON is YAML too)

        manager = request.query.get("fieldManager", "")
        if not manager:
            raise APIError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                                           "is required for apply patch")
        config = yaml.safe_load(body)
        dry_run = request.query.get("dryRun") == "All"
        force = request.query.get("force") in ("true", "1")
        config.setdefault("metadata", {})["name"] = name
        if current is None:
            created = self._create(res, config, namespace, manager=manager, operation="Apply", dry_run=dry_run)
            return _json(self._render(created, res, version), status=201)
        sent_rv = config["metadata"].get("resourceVersion")
        if sent_rv and sent_rv != current["metadata"]["resourceVersion"]:
            raise APIError(409, "Conflict", f'Operation cannot be fulfilled on {res.plural} "{name}": the object '
                                            "has been modified; please apply your changes to the latest version "
                                            "and try again")
        applied = _server_side_apply(current, config, manager, force=force, api_version=res.api_version(version))
        if applied == current:
            return _json(self._render(current, res, version))  # nothing changed: nothing written
        if dry_run:
            return _json(self._render(applied, res, version))
        return _json(self._render(self._update(res, applied), res, version))

    def _render(self, obj: Obj, res: Resource, version: str, *, typed: bool = True) -> Obj:
        out = copy.deepcopy(obj)
        if typed:
            out["apiVersion"] = res.api_version(version)
            out["kind"] = res.kind
        else:  # items of core lists carry no apiVersion/kind on the wire
            out.pop("apiVersion", None)
            out.pop("kind", None)
        return out

    def _selected(self, request: web.Request, res: Resource, namespace: str | None) -> list[Obj]:
        selector = _parse_selector(request.query.get("labelSelector", ""))
        by_fields = _parse_fields(request.query.get("fieldSelector", ""))
        return [
            o for (ns, _), o in sorted(self._objects[(res.group, res.plural)].items())
            if (namespace is None or ns == namespace)
            and _selects(selector, o["metadata"].get("labels") or {}) and _fields_match(by_fields, o)
        ]

    def _list(self, request: web.Request, res: Resource, version: str, namespace: str | None) -> web.Response:
        query = request.query
        token = query.get("continue", "")
        if token:
            snapshot = self._snapshots.get(token)
            if snapshot is None or snapshot[0] < self._oldest_rv:
                raise APIError(410, "Expired", "The provided continue parameter is too old to display a "
                                                 "consistent list result. You can start a new list without "
                                                 "the continue parameter.")
            rv, items = snapshot
        else:
            asked = query.get("resourceVersion", "")
            if asked not in ("", "0") and self.list_gone_on_stale and int(asked) < self._oldest_rv:
                raise APIError(410, "Expired", f"too old resource version: {asked} ({self._oldest_rv})")
            rv, items = self._rv, self._selected(request, res, namespace)
        limit = int(query.get("limit", "0") or 0)
        page, rest = (items[:limit], items[limit:]) if limit > 0 else (items, [])
        meta: Obj = {"resourceVersion": str(rv)}
        if rest:
            next_token = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            self._snapshots[next_token] = (rv, rest)
            meta["continue"] = next_token
            meta["remainingItemCount"] = len(rest)
        return _json({
            "kind": f"{res.kind}List",
            "apiVersion": res.api_version(version),
            "metadata": meta,
            "items": [self._render(o, res, version, typed=bool(res.group)) for o in page],
        })

    async def _watch(
        self, request: web.Request, res: Resource, version: str, namespace: str | None
    ) -> web.StreamResponse:
        query = request.query
        asked = query.get("resourceVersion", "")
        timeout = float(query.get("timeoutSeconds", "0") or 0) or None
        too_old = asked not in ("", "0") and int(asked) < self._oldest_rv
        if too_old and self.watch_gone_as_http:
            raise APIError(410, "Expired", f"too old resource version: {asked} ({self._oldest_rv})")
        watcher = _Watcher(res, version, namespace, _parse_selector(query.get("labelSelector", "")),
                           query.get("allowWatchBookmarks") in ("true", "1"),
                           fields=_parse_fields(query.get("fieldSelector", "")))
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        if too_old:
            await self._send(resp, {"type": "ERROR", "object": _status_body(
                410, "Expired", f"too old resource version: {asked} ({self._oldest_rv})")})
            return resp
        # Register and take the backlog in one step (no await between): no gap, no duplicate.
        self._watchers.add(watcher)
        if asked in ("", "0"):
            backlog = [_Event(self._rv, "ADDED", res, o) for o in self._selected(request, res, namespace)]
            watcher.rv = self._rv
        else:
            backlog = [seen for e in self._history if e.rv > int(asked) and (seen := watcher.view(e)) is not None]
            watcher.rv = max([int(asked), *(e.rv for e in backlog)])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout else None
        thawed = self._frozen_event()
        try:
            for event in backlog:
                await self._send(resp, self._event_json(event, version))
            while True:
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    await thawed.wait()  # a frozen server does not end its watches either
                    break
                try:
                    item = await asyncio.wait_for(watcher.queue.get(), remaining)
                except TimeoutError:
                    await thawed.wait()
                    break
                await thawed.wait()
                if item is None:
                    break
                if item is _DROP:
                    await resp.write(b'{"type":"MODIFIED","object":{"kind":')
                    if request.transport is not None:
                        request.transport.abort()
                    return resp
                if item is _BOOKMARK:
                    await self._send(resp, {"type": "BOOKMARK", "object": {
                        "kind": res.kind, "apiVersion": res.api_version(version),
                        "metadata": {"resourceVersion": str(self._rv)}}})
                    continue
                await self._send(resp, self._event_json(item, version))
        except ConnectionResetError:  # the client went away: nothing left to do
            return resp
        finally:
            self._watchers.discard(watcher)
        with contextlib.suppress(ConnectionResetError):
            await resp.write_eof()
        return resp

    def _event_json(self, event: _Event, version: str) -> Obj:
        return {"type": event.type, "object": self._render(event.obj, event.resource, version)}

    @staticmethod
    async def _send(resp: web.StreamResponse, event: Obj) -> None:
        await resp.write(json.dumps(event, separators=(",", ":")).encode() + b"\n")


# ---------------------------------------------------------------------------- helpers
class APIError(Exception):
    """An answer other than success: raised by the mutators, served as a ``Status``."""

    def __init__(self, code: int, reason: str, message: str, *, causes: list[Obj] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.causes = code, reason, message, causes or []


def _status_body(code: int, reason: str, message: str, causes: list[Obj] | None = None) -> Obj:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
    if causes:
        body["details"] = {"causes": causes}
    return body


def _status(code: int, reason: str, message: str, causes: list[Obj] | None = None) -> web.Response:
    return _json(_status_body(code, reason, message, causes), status=code)


def _json(body: Obj, *, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(body).encode(), status=status, content_type="application/json")


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge(out.get(key), value)
    return out


def _parse_selector(text: str) -> list[tuple[str, str, str]]:
    """Equality and existence terms: ``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``."""
    terms = []
    for term in filter(None, (t.strip() for t in text.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            terms.append((key.strip(), "!=", value.strip()))
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            terms.append((key.strip(), "=", value.strip()))
        elif term.startswith("!"):
            terms.append((term[1:].strip(), "!", ""))
        elif " " in term:
            raise APIError(400, "BadRequest", f"set-based selectors are not supported: {term}")
        else:
            terms.append((term, "exists", ""))
    return terms


def _selects(terms: list[tuple[str, str, str]], labels: dict[str, str]) -> bool:
    for key, op, value in terms:
        if op == "=" and labels.get(key) != value:
            return False
        if op == "!=" and labels.get(key) == value:
            return False
        if op == "exists" and key not in labels:
            return False
        if op == "!" and key in labels:
            return False
    return True


def _parse_fields(text: str) -> list[tuple[str, str, str]]:
    """Field selector terms ``a.b=c``, ``a.b==c``, ``a.b!=c`` (what kube-apiserver supports)."""
    terms = []
    for term in filter(None, (t.strip() for t in text.split(","))):
        op = "!=" if "!=" in term else "="
        key, value = term.replace("==", "=").split(op, 1)
        terms.append((key.strip(), op, value.strip()))
    return terms


def _fields_match(terms: list[tuple[str, str, str]], obj: Obj) -> bool:
    for path, op, value in terms:
        current: Any = obj
        for part in path.split("."):
            current = current.get(part) if isinstance(current, dict) else None
        if (str(current) if current is not None else "") != value if op == "=" else current == value:
            return False
    return True


# ---------------------------------------------------------------------------- field ownership
FieldPath = tuple[str, ...]
Owners = dict[tuple[str, str], set[FieldPath]]  # (manager, operation) -> leaf paths
# Fields nobody owns: identity, server-set metadata, status.
_UNOWNED: tuple[FieldPath, ...] = (("apiVersion",), ("kind",), ("status",), ("metadata", "name"),
                              ("metadata", "namespace"), ("metadata", "uid"), ("metadata", "resourceVersion"),
                              ("metadata", "generation"), ("metadata", "creationTimestamp"),
                              ("metadata", "managedFields"))


def _leaves(obj: Any, prefix: FieldPath = ()) -> dict[FieldPath, Any]:
    """Every leaf of ``obj`` by path: maps are walked key by key, lists are one value."""
    if prefix in _UNOWNED:
        return {}
    if not isinstance(obj, dict) or (not obj and prefix):
        return {prefix: obj} if prefix else {}
    out: dict[FieldPath, Any] = {}
    for key, value in obj.items():
        out.update(_leaves(value, (*prefix, key)))
    return out


def _fields_v1(paths: set[FieldPath]) -> Obj:
    out: Obj = {}
    for path in sorted(paths):
        node = out
        for part in path:
            node = node.setdefault(f"f:{part}", {})
    return out


def _paths(fields: Obj, prefix: FieldPath = ()) -> set[FieldPath]:
    out: set[FieldPath] = set()
    for key, value in fields.items():
        if not key.startswith("f:"):
            continue
        path = (*prefix, key[2:])
        out |= _paths(value, path) if value else {path}
    return out


def _owners(obj: Obj) -> Owners:
    owners: Owners = {}
    for entry in (obj.get("metadata") or {}).get("managedFields") or ():
        owners[(entry["manager"], entry["operation"])] = _paths(entry.get("fieldsV1") or {})
    return owners


def _set_managed_fields(obj: Obj, owners: Owners, api_version: str) -> None:
    """Store ``owners`` as managedFields, dropping paths the object no longer has and empty entries."""
    present = set(_leaves(obj))
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    previous = {(e["manager"], e["operation"]): e for e in (obj.get("metadata") or {}).get("managedFields") or ()}
    entries = []
    for (manager, operation), paths in owners.items():
        paths = paths & present
        if not paths:
            continue
        fields = _fields_v1(paths)
        old = previous.get((manager, operation))
        time = old["time"] if old is not None and old.get("fieldsV1") == fields else now
        entries.append({"manager": manager, "operation": operation, "apiVersion": api_version, "time": time,
                        "fieldsType": "FieldsV1", "fieldsV1": fields})
    meta = obj.setdefault("metadata", {})
    if entries:
        meta["managedFields"] = entries
    else:
        meta.pop("managedFields", None)


def _take(owners: Owners, me: tuple[str, str], old: Obj, new: Obj) -> None:
    """An Update by ``me``: it owns what it changed; nobody owns what it removed."""
    before, after = _leaves(old), _leaves(new)
    changed = {p for p, v in after.items() if p not in before or before[p] != v}
    removed = set(before) - set(after)
    for paths in owners.values():
        paths -= changed | removed
    owners.setdefault(me, set()).update(changed)


def _delete(obj: Obj, path: FieldPath) -> None:
    """Remove the leaf at ``path`` and the maps it leaves empty (Go omits empty maps)."""
    parents = [obj]
    for part in path[:-1]:
        parents.append(parents[-1].get(part) or {})
    parents[-1].pop(path[-1], None)
    for depth in range(len(path) - 1, 0, -1):
        if parents[depth] == {}:
            parents[depth - 1].pop(path[depth - 1], None)


def _set(obj: Obj, path: FieldPath, value: Any) -> None:
    for part in path[:-1]:
        obj = obj.setdefault(part, {})
    obj[path[-1]] = copy.deepcopy(value)


def _server_side_apply(current: Obj, config: Obj, manager: str, *, force: bool, api_version: str) -> Obj:
    """``current`` after ``manager`` applies ``config`` (``current`` itself when nothing changes);
    raises 409 with FieldManagerConflict causes on a conflict."""
    me = (manager, "Apply")
    owners = _owners(current)
    have, want = _leaves(current), _leaves(config)
    conflicts = sorted((other[0], path) for path, value in want.items() if have.get(path, _MISSING) != value
                       for other, paths in owners.items() if other != me and path in paths)
    if conflicts and not force:
        causes = [{"reason": "FieldManagerConflict", "message": f'conflict with "{who}" using {api_version}',
                   "field": "." + ".".join(path)} for who, path in conflicts]
        message = f"Apply failed with {len(conflicts)} conflict{'s' if len(conflicts) > 1 else ''}: " + "; ".join(
            f"{c['message']}: {c['field']}" for c in causes)
        raise APIError(409, "Conflict", message, causes=causes)
    for (who, operation), paths in owners.items():  # forced: the others lose what was taken
        if who != manager:
            paths -= {path for _, path in conflicts}
    result = copy.deepcopy(current)
    for path in owners.get(me, set()) - set(want):
        if not any(path in paths for other, paths in owners.items() if other != me):
            _delete(result, path)
    for path, value in want.items():
        _set(result, path, value)
    owners[me] = set(want)
    _set_managed_fields(result, owners, api_version)
    return current if result == current else result


_MISSING = object()


def _manager(request: web.Request) -> str:
    """The request's field manager: ``fieldManager``, else the user agent's first word, as kube-apiserver."""
    return request.query.get("fieldManager") or request.headers.get("User-Agent", "unknown").split("/")[0]
