"""Leader election on a ``coordination.k8s.io/v1`` Lease, as client-go's leaderelection does it.

Every replica runs a :class:`LeaderElector`; at most one holds the Lease and may write.
The rules and durations are client-go's (``k8s.io/client-go/tools/leaderelection``):

* every ``retry_period`` (2 s) each replica reads the Lease. The holder renews it
  (``renewTime``); another replica takes it only once the record has not changed for
  ``lease_duration`` (15 s) *as measured on its own clock* since it last saw it change,
  so clocks need not agree;
* every write is an update with the read ``resourceVersion`` (optimistic concurrency):
  of two replicas racing for an expired Lease exactly one wins;
* the holder stops acting as leader when it has not renewed for ``renew_deadline``
  (10 s), before any other replica may take over (15 s after the last renewal it saw);
* on shutdown the holder releases the Lease (empty holder, 1 s duration), so another
  replica takes over within one ``retry_period`` instead of ``lease_duration``.

:func:`next_record` (what to write, if anything) is pure; :class:`LeaderElector` does
the I/O with the ``kubernetes`` client in a thread.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..logs import fields

log = logging.getLogger("routewarden.leader")

MICROTIME = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True, slots=True)
class LeaseConfig:
    """Where the Lease is and its timings (client-go's defaults)."""

    namespace: str
    identity: str
    name: str = "routewarden-reconciler"
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.lease_duration > self.renew_deadline > self.retry_period > 0:
            raise ValueError("leader election needs lease duration > renew deadline > retry period > 0 "
                             f"(got {self.lease_duration}, {self.renew_deadline}, {self.retry_period})")


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """The Lease's spec, as client-go's LeaderElectionRecord."""

    holder: str = ""
    lease_duration: int = 15
    acquire_time: str | None = None
    renew_time: str | None = None
    transitions: int = 0

    @classmethod
    def from_lease(cls, lease: Mapping[str, Any]) -> LeaseRecord:
        spec = lease.get("spec") or {}
        return cls(
            holder=str(spec.get("holderIdentity") or ""),
            lease_duration=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=spec.get("acquireTime"),
            renew_time=spec.get("renewTime"),
            transitions=int(spec.get("leaseTransitions") or 0),
        )

    def to_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"holderIdentity": self.holder, "leaseDurationSeconds": self.lease_duration,
                                "leaseTransitions": self.transitions}
        if self.acquire_time:
            spec["acquireTime"] = self.acquire_time
        if self.renew_time:
            spec["renewTime"] = self.renew_time
        return spec


def microtime(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime(MICROTIME)


def next_record(
    current: LeaseRecord | None, *, identity: str, observed_at: float, now: float, wall: str, config: LeaseConfig
) -> LeaseRecord | None:
    """The record to write to hold the Lease, or None when another replica holds it.

    ``observed_at`` is when this replica last saw ``current`` change (its own monotonic
    clock), ``now`` the monotonic time, ``wall`` the wall-clock time for the record.
    """
    # The Lease holds whole seconds, which followers trust: round up, never shorten the lease.
    mine = LeaseRecord(holder=identity, lease_duration=math.ceil(config.lease_duration), acquire_time=wall,
                       renew_time=wall)
    if current is None:
        return mine
    if current.holder and current.holder != identity and now < observed_at + current.lease_duration:
        return None  # held, and not expired by our clock
    if current.holder == identity:
        return replace(current, renew_time=wall, lease_duration=mine.lease_duration)
    return replace(mine, transitions=current.transitions + 1)


def released(current: LeaseRecord) -> LeaseRecord:
    """What the holder writes on shutdown (client-go's ReleaseOnCancel)."""
    return replace(current, holder="", lease_duration=1)


class LeaderElector:
    """Acquires and renews the Lease from a task; :meth:`is_leader` says whether to write now."""

    def __init__(
        self,
        api_client: Any,
        config: LeaseConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.api_client = api_client
        self.config = config
        self.clock = clock
        self.on_change = on_change
        self._leader = False
        self._renewed_at = 0.0
        self._observed: LeaseRecord | None = None
        self._observed_at = 0.0
        self._resource_version = ""
        self._stopping = False  # set before the release: a round still in its thread must not write
        self.changed = asyncio.Event()  # set on every gain or loss of leadership

    # ------------------------------------------------------------------ state
    def is_leader(self) -> bool:
        """True while this replica holds the Lease and renewed it within the renew deadline."""
        return self._leader and self.clock() < self._renewed_at + self.config.renew_deadline

    def _set_leader(self, leader: bool) -> None:
        if leader == self._leader:
            return
        self._leader = leader
        log.info("became leader" if leader else "stopped leading", extra=fields(
            lease=f"{self.config.namespace}/{self.config.name}", identity=self.config.identity))
        self.changed.set()
        if self.on_change is not None:
            self.on_change(leader)

    # ------------------------------------------------------------------ one round (blocking)
    def try_acquire_or_renew(self) -> bool:
        """One read and, if this replica may hold the Lease, one write. Blocking."""
        from kubernetes.client import CoordinationV1Api
        from kubernetes.client.exceptions import ApiException

        api = CoordinationV1Api(self.api_client)
        timeout = self.config.renew_deadline / 2
        now_wall = microtime(dt.datetime.now(dt.UTC))
        try:
            lease = _json(api.read_namespaced_lease(self.config.name, self.config.namespace,
                                                    _preload_content=False, _request_timeout=timeout))
        except ApiException as exc:
            if exc.status != 404:
                raise
            record = next_record(None, identity=self.config.identity, observed_at=0, now=self.clock(),
                                 wall=now_wall, config=self.config)
            assert record is not None
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.config.name, "namespace": self.config.namespace},
                    "spec": record.to_spec()}
            try:
                created = _json(api.create_namespaced_lease(self.config.namespace, body, _preload_content=False,
                                                            _request_timeout=timeout))
            except ApiException as create_exc:
                if create_exc.status == 409:  # another replica created it first
                    return False
                raise
            self._observe(record, created)
            return True
        current = LeaseRecord.from_lease(lease)
        if current != self._observed:
            self._observed, self._observed_at = current, self.clock()
        self._resource_version = str((lease.get("metadata") or {}).get("resourceVersion") or "")
        record = next_record(current, identity=self.config.identity, observed_at=self._observed_at,
                             now=self.clock(), wall=now_wall, config=self.config)
        if record is None or self._stopping:
            return False
        lease["spec"] = record.to_spec()
        try:
            updated = _json(api.replace_namespaced_lease(self.config.name, self.config.namespace, lease,
                                                         _preload_content=False, _request_timeout=timeout))
        except ApiException as exc:
            if exc.status == 409:  # someone else wrote it since we read it
                return False
            raise
        self._observe(record, updated)
        return True

    def _observe(self, record: LeaseRecord, lease: Mapping[str, Any]) -> None:
        self._observed, self._observed_at = record, self.clock()
        self._resource_version = str((lease.get("metadata") or {}).get("resourceVersion") or "")

    def release(self) -> bool:
        """Give the Lease up if this replica holds it (ReleaseOnCancel). Blocking.

        A round cancelled on shutdown may still be in its thread and renew the Lease after
        this replica last observed it, so the release reads the Lease and writes it back
        released while this replica is still its holder, again if that write conflicts."""
        from kubernetes.client import CoordinationV1Api
        from kubernetes.client.exceptions import ApiException

        self._stopping = True
        if not self._leader or self._observed is None:
            return False
        self._set_leader(False)
        api = CoordinationV1Api(self.api_client)
        timeout = self.config.retry_period
        for _ in range(3):
            lease = _json(api.read_namespaced_lease(self.config.name, self.config.namespace,
                                                    _preload_content=False, _request_timeout=timeout))
            current = LeaseRecord.from_lease(lease)
            if current.holder != self.config.identity:
                return False  # already released, or taken over
            lease["spec"] = released(current).to_spec()
            try:
                api.replace_namespaced_lease(self.config.name, self.config.namespace, lease,
                                             _preload_content=False, _request_timeout=timeout)
            except ApiException as exc:
                if exc.status == 409:  # written since we read it (our own round in flight): read again
                    continue
                raise
            return True
        return False

    # ------------------------------------------------------------------ the loop
    async def run(self) -> None:
        """Acquire, then renew, every retry period until cancelled; release on the way out."""
        try:
            while True:
                await self._round()
                # Followers jitter their attempts (client-go: JitterFactor 1.2), the holder renews on time.
                period = self.config.retry_period
                await asyncio.sleep(period if self._leader else period * (1 + 1.2 * random.random()))
        finally:
            if self._leader:
                try:
                    await asyncio.shield(asyncio.to_thread(self.release))
                except Exception as exc:  # noqa: BLE001 - the Lease then expires on its own
                    log.warning("could not release the Lease", extra=fields(error=f"{type(exc).__name__}: {exc}"))

    async def _round(self) -> None:
        # The renewal counts from before the request: the write lands later, and every other
        # replica measures the lease from when it saw the write, so this replica stops leading
        # at least lease_duration - renew_deadline before another may start.
        started = self.clock()
        try:
            # Bounded by the requests' own timeouts. (Not asyncio.wait_for: before Python 3.12 it can
            # swallow a cancellation that arrives as the call completes, and the task would never stop.)
            held = await asyncio.to_thread(self.try_acquire_or_renew)
        except Exception as exc:  # noqa: BLE001 - an unreachable apiserver is a failed round, not a crash
            held = False
            log.warning("leader election round failed", extra=fields(
                lease=f"{self.config.namespace}/{self.config.name}", error=f"{type(exc).__name__}: {exc}"))
        if held:
            self._renewed_at = started
            self._set_leader(True)
        elif self._leader and not self.is_leader():
            self._set_leader(False)  # could not renew within the renew deadline
        elif self._leader and self._observed is not None and self._observed.holder != self.config.identity:
            self._set_leader(False)  # someone else holds it now


def _json(resp: Any) -> dict[str, Any]:
    import orjson

    return orjson.loads(resp.data)
