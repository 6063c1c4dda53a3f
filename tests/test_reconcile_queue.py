"""The reconciler's queue: a burst of changes is one reconcile, churn is still reconciled, writes are paced."""

from __future__ import annotations

import pytest

from webhook.reconcile.queue import Backoff, Debouncer, TokenBucket

GATEWAY = ("Gateway", "infra", "shared")


def test_a_burst_of_500_changes_to_one_gateway_is_one_reconcile() -> None:
    """500 route changes 10 ms apart settle into one due target, due one quiet second after the last."""
    queue = Debouncer(quiet=1.0, max_delay=10.0)
    popped: list[object] = []
    now = 0.0
    for _ in range(500):
        queue.add(GATEWAY, now)
        popped += queue.pop_due(now)
        now += 0.01
    assert popped == [] and len(queue) == 1
    assert queue.next_due() == pytest.approx(now - 0.01 + 1.0)
    assert queue.pop_due(now + 1.0) == [GATEWAY]
    assert len(queue) == 0 and queue.next_due() is None


def test_a_gateway_that_never_stops_changing_is_reconciled_after_the_max_delay() -> None:
    """Changes every half second would postpone it forever; the max delay caps the wait."""
    queue = Debouncer(quiet=1.0, max_delay=10.0)
    due_at = None
    now = 0.0
    while due_at is None and now < 60:
        queue.add(GATEWAY, now)
        if queue.pop_due(now):
            due_at = now
        now += 0.5
    assert due_at == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("changes", "at", "due"),
    [
        ([("a", 0.0)], 0.99, []),
        ([("a", 0.0)], 1.0, ["a"]),
        ([("a", 0.0), ("b", 0.5)], 1.2, ["a"]),
        ([("a", 0.0), ("b", 0.5)], 1.5, ["a", "b"]),
        ([("b", 0.0), ("a", 0.1), ("b", 0.5)], 1.2, ["a"]),
    ],
    ids=["not-yet", "quiet-elapsed", "one-of-two", "both", "rechanged-later"],
)
def test_targets_become_due_one_quiet_period_after_their_last_change(
    changes: list[tuple[str, float]], at: float, due: list[str]
) -> None:
    """Each target has its own quiet period; due targets come out in the order they first changed."""
    queue = Debouncer(quiet=1.0, max_delay=10.0)
    for key, when in changes:
        queue.add(key, when)
    assert sorted(queue.pop_due(at)) == sorted(due)


def test_due_targets_come_out_in_the_order_they_first_changed() -> None:
    """The Gateway changed first is reconciled first."""
    queue = Debouncer(quiet=1.0, max_delay=10.0)
    for key, when in (("late", 0.3), ("early", 0.0), ("middle", 0.1)):
        queue.add(key, when)
    assert queue.pop_due(5.0) == ["early", "middle", "late"]


def test_a_retry_waits_its_own_delay_unless_a_new_change_comes() -> None:
    """A failed Service waits its backoff; a change meanwhile is new information: it is due at once
    when the retry has already waited longer than the max delay, else at the max delay."""
    queue = Debouncer(quiet=1.0, max_delay=10.0)
    queue.add("waiting", 0.0, delay=60.0)
    assert queue.pop_due(59.9) == [] and queue.pop_due(60.0) == ["waiting"]
    queue.add("changed-late", 0.0, delay=60.0)
    queue.add("changed-late", 30.0)
    assert queue.pop_due(30.0) == ["changed-late"]
    queue.add("changed-early", 0.0, delay=60.0)
    queue.add("changed-early", 2.0)
    assert queue.pop_due(9.9) == [] and queue.pop_due(10.0) == ["changed-early"]


def test_the_token_bucket_allows_a_burst_then_the_rate() -> None:
    """20 at once, then one every 0.1 s at 10/s."""
    bucket = TokenBucket(rate=10.0, burst=20)
    assert all(bucket.take(0.0) for _ in range(20))
    assert not bucket.take(0.0)
    assert bucket.wait(0.0) == pytest.approx(0.1)
    assert bucket.wait(0.1) == 0.0 and bucket.take(0.1)
    assert not bucket.take(0.1)
    taken = sum(bucket.take(t / 100) for t in range(11, 111))  # one second later: ten more
    assert taken == 10


def test_backoff_doubles_per_failure_up_to_the_maximum_and_resets_on_success() -> None:
    """1, 2, 4, ... seconds, capped; a success starts over."""
    backoff = Backoff(initial=1.0, maximum=5.0)
    assert [backoff.failed("svc") for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert backoff.failed("other") == 1.0
    backoff.succeeded("svc")
    assert backoff.failures("svc") == 0 and backoff.failed("svc") == 1.0
