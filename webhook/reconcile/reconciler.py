"""The background reconciler: keep generated Services as the mutation computes them, after they exist.

The mutating webhook shapes a generated Service when its controller writes it. The
values also depend on other objects (ServicePolicies, the Gateway's listeners, routes
with ``externalDNS.sources: [routes]``), and controllers do not rewrite their Service
when those change. The reconciler does: it runs in ``serve`` (online), on every replica,
and writes from the one that holds the Lease (:mod:`.lease`).

The generated Services are watched into a view of their own (:attr:`Reconciler.services`,
LoadBalancer Services only, slimmed on arrival), so the admission view's readiness and
freshness never depend on the reconciler's watch or its RBAC. For every change either
informer reports, :mod:`.changes` names the Gateways or Services it may affect; they wait in a :class:`~.queue.Debouncer` until their changes settle,
then each Service is read (for its ``managedFields``), its desired fields computed by
the mutation itself (:mod:`.desired`), and, when they differ from what is stored or
owned, written by **server-side apply** under the field manager ``routewarden``:

* ``force`` only when a matching ServicePolicy says ``forceConflicts: true``; otherwise
  a value another field manager owns is reported as a conflict and left as it is;
* a value routewarden owns and no longer computes is removed by applying without it;
* the apply carries the read ``resourceVersion``: a Service changed in between is read
  again, never overwritten with a stale answer;
* ``dry-run`` mode sends the same apply with ``dryRun=All``, and logs and counts what
  the apiserver says would change.

A full resync (every Service held) runs when this replica becomes the leader, when a
watched kind is relisted, and every ``resync`` seconds, for whatever an event missed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import orjson

from .. import gatewayapi as gw
from ..logs import fields
from ..mutation.implementations import implementation_of
from ..policy.model import PolicySet
from ..state.kinds import SERVICES, WatchedKind
from ..state.store import ClusterState
from .changes import EVERYTHING, Target, affected, expand, policy_targets, targets_of
from .desired import FIELD_MANAGER, Change, desired_fields, owned_by, plan, value_at
from .lease import LeaderElector
from .queue import Backoff, Debouncer, TokenBucket

if TYPE_CHECKING:  # the informer imports the kubernetes client, which only serve needs
    from ..state.informer import InformerConfig

log = logging.getLogger("routewarden.reconcile")

Mode = Literal["off", "dry-run", "on"]
MODES: tuple[Mode, ...] = ("off", "dry-run", "on")
APPLY_PATCH = "application/apply-patch+yaml"
# Kinds whose previous targets are remembered: a route or ListenerSet that moves away
# from a Gateway changes that Gateway too.
REMEMBERED = frozenset({*gw.ROUTE_KINDS, "ListenerSet"})


@dataclass(frozen=True, slots=True)
class ReconcilerConfig:
    mode: Mode = "dry-run"
    resync: float = 600.0
    quiet: float = 1.0
    max_delay: float = 10.0
    rate: float = 10.0
    burst: int = 20
    backoff_initial: float = 1.0
    backoff_max: float = 300.0
    request_timeout: float = 10.0
    poll: float = 1.0  # longest sleep between checks of leadership and policies
    field_manager: str = FIELD_MANAGER


# ----------------------------------------------------------------------------- the Services held
SERVICE_SPEC_FIELDS = ("type", "loadBalancerClass", "externalTrafficPolicy")


def generated_service_view(obj: dict[str, Any]) -> dict[str, Any] | None:
    """What the view keeps of a Service: only a LoadBalancer Service a controller may have
    generated (the marks the mutation recognises), and only the fields its rules read."""
    meta = obj.get("metadata")
    spec = obj.get("spec")
    if not isinstance(meta, dict) or not isinstance(spec, dict) or spec.get("type") != "LoadBalancer":
        return None
    labels = meta.get("labels")
    refs = meta.get("ownerReferences")
    if implementation_of(labels if isinstance(labels, dict) else {}, refs if isinstance(refs, list) else []) is None:
        return None
    return {
        "apiVersion": obj.get("apiVersion", "v1"),
        "kind": "Service",
        "metadata": {k: v for k, v in meta.items() if k != "managedFields"},
        "spec": {k: spec[k] for k in SERVICE_SPEC_FIELDS if k in spec},
    }


def service_kinds(namespaces: Iterable[str] = ()) -> tuple[WatchedKind, ...]:
    """The Service watches: one per namespace given, or one for the whole cluster."""
    base = SERVICES.with_keep(generated_service_view)
    names = sorted(set(namespaces))
    return tuple(base.in_namespace(ns) for ns in names) if names else (base,)


# ----------------------------------------------------------------------------- the reconciler
@dataclass
class _Outcome:
    result: Literal["applied", "unchanged", "conflict", "retry", "error", "skipped"]
    changes: list[Change] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)


class Reconciler:
    """See the module docstring. ``on_event`` is the informer hook; ``run`` the background task."""

    def __init__(
        self,
        *,
        state: ClusterState,
        policies: Any,  # PolicyStore: .current, .loaded
        api_client: Any,
        telemetry: Any,
        elector: LeaderElector,
        config: ReconcilerConfig = ReconcilerConfig(),
        service_watches: tuple[WatchedKind, ...] | None = None,
        informer: InformerConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``state`` is the admission view (Gateways, routes, ...); the Services this reconciler
        watches (``service_watches``, default :func:`service_kinds`) go into :attr:`services`."""
        if config.mode == "off":
            raise ValueError("a reconciler in mode off is no reconciler: do not start one")
        self.state = state
        self.services = ClusterState()
        self.service_watches = service_watches if service_watches is not None else service_kinds()
        self.informer = informer
        self.policies = policies
        self.api_client = api_client
        self.telemetry = telemetry
        self.elector = elector
        self.config = config
        self.clock = clock
        self.queue = Debouncer(quiet=config.quiet, max_delay=config.max_delay)
        self.bucket = TokenBucket(rate=config.rate, burst=config.burst)
        self.backoff = Backoff(initial=config.backoff_initial, maximum=config.backoff_max)
        self.writes = 0  # applies sent (dry-run ones included), for tests and logs
        self._remembered: dict[tuple[str, str, str], set[Target]] = {}
        self._written: dict[tuple[str, str], str] = {}  # Service -> resourceVersion of our last apply
        self._leading = False
        self._policies: PolicySet | None = None
        self._next_resync = 0.0
        self._wake = asyncio.Event()
        self._in_flight = 0

    # ------------------------------------------------------------------ events (loop thread)
    def on_event(self, kind: str, etype: str, obj: dict[str, Any] | None) -> None:
        """The informer's hook: remember what routes reach, queue what a change affects."""
        if obj is None:  # a relist: what routes reach is rebuilt, everything is reconciled
            if kind in REMEMBERED:
                self._remember_all(kind)
            self.enqueue({EVERYTHING})
            return
        if not self._leading and kind not in REMEMBERED:
            return  # nothing to queue on a follower (a new leader starts with a full resync)
        meta = obj.get("metadata") or {}
        key = (kind, str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        if kind == "Service" and self._written.get(key[1:]) == meta.get("resourceVersion"):
            return  # our own apply coming back
        new = None if etype == "DELETED" else obj
        targets = affected(kind, None, new, self.state)
        if kind in REMEMBERED:
            targets |= self._remembered.pop(key, set())
            if new is not None:
                self._remembered[key] = targets_of(kind, new, self.state)
        self.enqueue(targets)

    def _remember_all(self, kind: str) -> None:
        for stale in [k for k in self._remembered if k[0] == kind]:
            del self._remembered[stale]
        for obj in self.state.objects(kind):
            meta = obj.get("metadata") or {}
            self._remembered[(kind, str(meta.get("namespace") or ""), str(meta.get("name") or ""))] = \
                targets_of(kind, obj, self.state)

    def enqueue(self, targets: Iterable[Target], *, delay: float | None = None) -> None:
        if not self._leading:
            return  # a new leader starts with a full resync
        now = self.clock()
        for target in targets:
            self.queue.add(target, now, delay=delay)
        self._wake.set()
        self._export_depth()

    # ------------------------------------------------------------------ the loop
    async def run(self) -> None:
        """Watch Services, elect, and while leading, reconcile. Until cancelled; the Lease is released
        before the watches stop."""
        from ..state.informer import InformerConfig, run_informers

        self.services.expect(k.kind for k in self.service_watches)
        watches = asyncio.create_task(run_informers(
            self.services, api_client=self.api_client, kinds=self.service_watches,
            config=self.informer or InformerConfig(), on_event=self.on_event), name="service-informer")
        election = asyncio.create_task(self.elector.run(), name="leader-election")
        log.info("reconciler started", extra=fields(mode=self.config.mode, field_manager=self.config.field_manager,
                                                    identity=self.elector.config.identity))
        try:
            while True:
                await self._step()
        finally:
            self._stop_leading()
            election.cancel()
            await asyncio.gather(election, return_exceptions=True)
            watches.cancel()
            await asyncio.gather(watches, return_exceptions=True)

    def _ready(self) -> bool:
        return bool(self.state.synced and self.services.synced and self.policies.loaded)

    def _start_leading(self) -> None:
        self._leading = True
        self.telemetry.reconcile_leader(True)
        self._policies = self.policies.current
        self._next_resync = self.clock() + self.config.resync
        self.enqueue({EVERYTHING})

    def _stop_leading(self) -> None:
        if self._leading:
            self.queue.clear()
        self._leading = False
        self.telemetry.reconcile_leader(False)
        self._export_depth()

    async def _step(self) -> None:
        self._wake.clear()
        if not (self.elector.is_leader() and self._ready()):
            self._stop_leading()
            await self._sleep(self.config.poll)
            return
        if not self._leading:
            self._start_leading()
        current = self.policies.current
        if current is not self._policies:
            previous, self._policies = self._policies, current
            self.enqueue(policy_targets(previous or PolicySet(), current, self.state))
        now = self.clock()
        if now >= self._next_resync:
            self._next_resync = now + self.config.resync
            self.enqueue({EVERYTHING})
        due = self.queue.pop_due(now)
        if due:
            await self._reconcile_all(expand(due, self.state, self.services))
            return
        next_due = self.queue.next_due()
        wait = min(self.config.poll, self._next_resync - now, (next_due - now) if next_due is not None else self.config.poll)
        await self._sleep(max(wait, 0.0))

    async def _sleep(self, seconds: float) -> None:
        """Until woken by a change, or ``seconds``. (asyncio.wait, not wait_for: before Python 3.12
        wait_for can swallow a cancellation that arrives as the wait ends.)"""
        waiter = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({waiter}, timeout=seconds)
        finally:
            waiter.cancel()

    async def _reconcile_all(self, services: list[tuple[str, str]]) -> None:
        self._in_flight = len(services)
        for namespace, name in services:
            if not self.elector.is_leader():
                break
            wait = self.bucket.wait(self.clock())
            if wait > 0:
                await asyncio.sleep(wait)
            self.bucket.take(self.clock())
            await self.reconcile(namespace, name)
            self._in_flight -= 1
            self._export_depth()
        self._in_flight = 0
        self._export_depth()

    def _export_depth(self) -> None:
        self.telemetry.reconcile_queue(len(self.queue) + self._in_flight)

    # ------------------------------------------------------------------ one Service
    async def reconcile(self, namespace: str, name: str) -> _Outcome:
        """Read, compute, and (if something differs) apply one Service."""
        key = ("Service", namespace, name)
        held = self.services.get("Service", namespace, name)
        policies = self.policies.current
        if held is None or desired_fields(held, policies=policies, state=self.state).fields is None:
            return _Outcome("skipped")  # not held, or not a Service the mutation shapes: no read
        try:
            outcome = await self._reconcile(namespace, name, policies)
        except Exception as exc:  # noqa: BLE001 - one Service failing must not stop the others
            outcome = _Outcome("error", detail={"error": f"{type(exc).__name__}: {exc}"})
        if outcome.result == "error":
            delay = self.backoff.failed(key)
            self.enqueue({key}, delay=delay)
            outcome.detail["retry_in"] = delay
        elif outcome.result == "retry":
            self.enqueue({key})
        else:
            self.backoff.succeeded(key)
        if outcome.result in ("applied", "conflict", "error"):
            self.telemetry.reconciled(mode=self.config.mode, result=outcome.result, namespace=namespace, name=name,
                                      changes=[f"{c.action} {c.path}" for c in outcome.changes], **outcome.detail)
        return outcome

    async def _reconcile(self, namespace: str, name: str, policies: PolicySet) -> _Outcome:
        from kubernetes.client.exceptions import ApiException

        try:
            service = await asyncio.to_thread(self._read, namespace, name)
        except ApiException as exc:
            if exc.status == 404:
                return _Outcome("skipped")
            raise
        desired = desired_fields(service, policies=policies, state=self.state)
        if desired.fields is None:
            return _Outcome("skipped")
        owned = owned_by(service, self.config.field_manager)
        todo = plan(service, desired.fields, owned)
        if not todo.needed:
            return _Outcome("unchanged")
        detail: dict[str, Any] = {"gateway": "/".join(desired.gateway or ()), "policies": list(desired.policies),
                                  "force": desired.force, "field_manager": self.config.field_manager}
        if not self.elector.is_leader():  # checked again right before the write
            return _Outcome("skipped")
        dry_run = self.config.mode == "dry-run"
        self.writes += 1
        try:
            result = await asyncio.to_thread(self._apply, namespace, name, todo.body, force=desired.force,
                                             dry_run=dry_run)
        except ApiException as exc:
            return self._failed(exc, todo.changes, detail)
        if not dry_run:
            self._written[(namespace, name)] = str((result.get("metadata") or {}).get("resourceVersion") or "")
        changes = [c for c in todo.changes
                   if c.action == "adopt" or value_at(result, c.path) != value_at(service, c.path)]
        unexpected = [c.path for c in todo.changes if c.action != "remove" and value_at(result, c.path) != c.value]
        if unexpected:  # another mutating webhook, or a replica with an older view, changed the apply
            detail["differs_from_apply"] = unexpected
        return _Outcome("applied" if changes else "unchanged", changes, detail)

    def _failed(self, exc: Any, changes: tuple[Change, ...], detail: dict[str, Any]) -> _Outcome:
        status = _status(exc)
        causes = (status.get("details") or {}).get("causes") or []
        conflicts = [c for c in causes if c.get("reason") == "FieldManagerConflict"]
        if exc.status == 409 and conflicts:
            detail["conflicts"] = [f"{c.get('field', '')}: {c.get('message', '')}" for c in conflicts]
            return _Outcome("conflict", list(changes), detail)
        if exc.status == 409:  # the resourceVersion moved: read it again
            return _Outcome("retry")
        if exc.status == 404:
            return _Outcome("skipped")
        detail["error"] = f"HTTP {exc.status}: {status.get('message') or exc.reason}"
        return _Outcome("error", list(changes), detail)

    # ------------------------------------------------------------------ I/O (blocking, in threads)
    def _read(self, namespace: str, name: str) -> dict[str, Any]:
        from kubernetes.client import CoreV1Api

        resp = CoreV1Api(self.api_client).read_namespaced_service(
            name, namespace, _preload_content=False, _request_timeout=self.config.request_timeout)
        return orjson.loads(resp.data)

    def _apply(self, namespace: str, name: str, body: dict[str, Any], *, force: bool, dry_run: bool) -> dict[str, Any]:
        from kubernetes.client import CoreV1Api

        options: dict[str, Any] = {"field_manager": self.config.field_manager, "_content_type": APPLY_PATCH,
                                   "_preload_content": False, "_request_timeout": self.config.request_timeout}
        if force:
            options["force"] = True
        if dry_run:
            options["dry_run"] = "All"
        resp = CoreV1Api(self.api_client).patch_namespaced_service(name, namespace, body, **options)
        return orjson.loads(resp.data)


def _status(exc: Any) -> dict[str, Any]:
    try:
        body = orjson.loads(exc.body or b"{}")
    except (orjson.JSONDecodeError, TypeError):
        return {}
    return body if isinstance(body, dict) else {}
