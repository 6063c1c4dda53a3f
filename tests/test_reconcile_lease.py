"""Leader election on a coordination.k8s.io/v1 Lease, against the fake kube-apiserver: one holder at a time."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import kubernetes.client
import pytest
from conftest import eventually
from kubeapi import FakeKubeAPI

from webhook.reconcile.lease import LeaderElector, LeaseConfig, LeaseRecord, next_record, released

CONFIG = LeaseConfig(namespace="routewarden", identity="me")
WALL = "2026-01-01T00:00:00.000000Z"


@pytest.mark.parametrize(
    ("current", "observed_at", "now", "expected"),
    [
        (None, 0, 0, LeaseRecord("me", 15, WALL, WALL, 0)),
        (LeaseRecord("other", 15, "t0", "t1", 3), 100, 114.9, None),
        (LeaseRecord("other", 15, "t0", "t1", 3), 100, 115.0, LeaseRecord("me", 15, WALL, WALL, 4)),
        (LeaseRecord("me", 15, "t0", "t1", 3), 100, 101, LeaseRecord("me", 15, "t0", WALL, 3)),
        (LeaseRecord("", 1, "t0", "t1", 3), 100, 100, LeaseRecord("me", 15, WALL, WALL, 4)),
    ],
    ids=["no-lease", "held-and-fresh", "held-and-expired-by-our-clock", "ours-renewed", "released"],
)
def test_a_replica_takes_the_lease_only_when_free_or_expired_by_its_own_clock(
    current: LeaseRecord | None, observed_at: float, now: float, expected: LeaseRecord | None
) -> None:
    """client-go's rules: renew your own, take an expired or released one (a transition), never a fresh one."""
    assert next_record(current, identity="me", observed_at=observed_at, now=now, wall=WALL, config=CONFIG) == expected


def test_releasing_empties_the_holder_and_shortens_the_lease() -> None:
    """ReleaseOnCancel: an empty holder with a one-second lease lets the next replica in at once."""
    assert released(LeaseRecord("me", 15, "t0", "t1", 2)) == LeaseRecord("", 1, "t0", "t1", 2)


@pytest.mark.parametrize("durations", [(10, 10, 2), (15, 10, 0), (15, 16, 2)])
def test_inconsistent_durations_are_refused(durations: tuple[float, float, float]) -> None:
    """The leader must give up (renew deadline) before a follower may take over (lease duration)."""
    with pytest.raises(ValueError, match="lease duration > renew deadline > retry period"):
        LeaseConfig(namespace="n", identity="i", lease_duration=durations[0], renew_deadline=durations[1],
                    retry_period=durations[2])


FAST = {"lease_duration": 1.0, "renew_deadline": 0.6, "retry_period": 0.1}  # seconds (the Lease holds whole seconds)


def client_for(api: FakeKubeAPI, token: str) -> kubernetes.client.ApiClient:
    configuration = kubernetes.client.Configuration(host=api.url)
    configuration.api_key = {"authorization": token}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    return kubernetes.client.ApiClient(configuration)


class Timeline:
    """Leadership intervals of every replica, on one clock."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str, bool]] = []

    def recorder(self, who: str) -> Any:
        return lambda leader: self.events.append((time.monotonic(), who, leader))

    def intervals(self, who: str) -> list[tuple[float, float]]:
        out, start = [], None
        for at, name, leader in self.events:
            if name != who:
                continue
            if leader:
                start = at
            elif start is not None:
                out.append((start, at))
                start = None
        if start is not None:
            out.append((start, float("inf")))
        return out


@contextlib.asynccontextmanager
async def electing(api: FakeKubeAPI, who: str, timeline: Timeline, durations: dict[str, float] = FAST
                   ) -> AsyncIterator[LeaderElector]:
    client = client_for(api, who)
    elector = LeaderElector(client, LeaseConfig(namespace="routewarden", identity=who, **durations),
                            on_change=timeline.recorder(who))
    task = asyncio.create_task(elector.run())
    try:
        yield elector
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        client.close()


def overlap(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> bool:
    return any(s1 < e2 and s2 < e1 for s1, e1 in a for s2, e2 in b)


async def test_a_released_lease_passes_to_the_other_replica_at_once() -> None:
    """a leads and b follows; when a stops it releases the Lease, and b leads within a few retries, well before
    the lease duration."""
    long_lease = {**FAST, "lease_duration": 5.0}  # what b would wait if a did not release
    timeline = Timeline()
    async with FakeKubeAPI() as api:
        api.register_defaults()
        async with contextlib.AsyncExitStack() as second, contextlib.AsyncExitStack() as first:
            a = await first.enter_async_context(electing(api, "a", timeline, long_lease))
            await eventually(a.is_leader, "a leads")
            b = await second.enter_async_context(electing(api, "b", timeline, long_lease))
            await asyncio.sleep(0.3)
            assert a.is_leader() and not b.is_leader()
            lease = api.get("Lease", "routewarden", "routewarden-reconciler")
            assert lease["spec"]["holderIdentity"] == "a" and lease["spec"]["leaseDurationSeconds"] == 5
            await first.aclose()
            started = time.monotonic()
            await eventually(b.is_leader, "b leads after a released the Lease")
            assert time.monotonic() - started < long_lease["lease_duration"] / 2
            spec = api.get("Lease", "routewarden", "routewarden-reconciler")["spec"]
            assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 1
    assert not overlap(timeline.intervals("a"), timeline.intervals("b"))


async def test_a_leader_that_cannot_renew_stops_before_the_other_replica_starts() -> None:
    """Renewals of a fail (apiserver unreachable for it): a stops at its renew deadline, b starts only after
    the lease duration it measured, so the two never lead at once; when a is back it stays a follower."""
    timeline = Timeline()
    async with FakeKubeAPI() as api:
        api.register_defaults()
        async with electing(api, "a", timeline) as a:
            await eventually(a.is_leader, "a leads")
            async with electing(api, "b", timeline) as b:
                await asyncio.sleep(0.3)
                api.fail_next(10_000, status=503, match=lambda r: r.headers.get("Authorization") == "Bearer a")
                await eventually(b.is_leader, "b takes over", timeout=10)
                assert not a.is_leader()
                api.clear_faults()
                await asyncio.sleep(0.5)
                assert b.is_leader() and not a.is_leader()
                stopped = a._renewed_at + FAST["renew_deadline"]  # when is_leader() turned false
    a_led, b_led = timeline.intervals("a"), timeline.intervals("b")
    assert a_led and b_led and not overlap(a_led, b_led)
    assert b_led[0][0] - stopped >= FAST["lease_duration"] - FAST["renew_deadline"] - 0.05


async def test_a_release_after_a_renewal_it_did_not_see_still_releases_and_no_round_writes_afterwards() -> None:
    """On shutdown a round cancelled in its thread may renew the Lease after the holder last observed it: the
    release must still empty the holder (not fail on the stale resourceVersion), and a round that runs after
    the release must not take the Lease back."""
    async with FakeKubeAPI() as api:
        api.register_defaults()
        client = client_for(api, "a")
        try:
            elector = LeaderElector(client, LeaseConfig(namespace="routewarden", identity="a", **FAST))
            assert await asyncio.to_thread(elector.try_acquire_or_renew)
            elector._set_leader(True)
            seen = api.get("Lease", "routewarden", "routewarden-reconciler")["metadata"]["resourceVersion"]
            # the round that was in flight: the same holder renews once more, unseen by this elector
            racing = LeaderElector(client, LeaseConfig(namespace="routewarden", identity="a", **FAST))
            assert await asyncio.to_thread(racing.try_acquire_or_renew)
            assert api.get("Lease", "routewarden", "routewarden-reconciler")["metadata"]["resourceVersion"] != seen

            assert await asyncio.to_thread(elector.release) is True
            lease = api.get("Lease", "routewarden", "routewarden-reconciler")
            assert lease["spec"]["holderIdentity"] == "" and lease["spec"]["leaseDurationSeconds"] == 1
            assert not elector.is_leader()

            assert await asyncio.to_thread(elector.try_acquire_or_renew) is False
            assert api.get("Lease", "routewarden", "routewarden-reconciler")["spec"]["holderIdentity"] == ""
        finally:
            client.close()
