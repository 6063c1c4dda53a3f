"""The reconciler's work queue: debounce, rate limit and retry backoff. Pure (the clock is passed in).

* :class:`Debouncer`: a target becomes due once no change touched it for ``quiet``
  seconds, and at the latest ``max_delay`` seconds after the first change, so a burst of
  500 route changes on one Gateway is one reconcile of its Services, and a Gateway that
  never stops changing is still reconciled.
* :class:`TokenBucket`: at most ``rate`` applies per second on average, ``burst`` at once
  (client-go's default controller limiter is 10/s with a burst of 100).
* :class:`Backoff`: per target, exponential delay after each failure, reset on success
  (client-go's per-item limiter, coarser: 1 s doubling up to 5 minutes).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field


@dataclass
class Debouncer:
    """Targets waiting for the changes on them to settle."""

    quiet: float = 1.0
    max_delay: float = 10.0
    _pending: dict[Hashable, tuple[float, float]] = field(default_factory=dict)  # key -> (first seen, due)

    def add(self, key: Hashable, now: float, *, delay: float | None = None) -> None:
        """A change touched ``key`` at ``now`` (``delay``: due no sooner than that, for retries)."""
        wait = self.quiet if delay is None else delay
        first, due = self._pending.get(key, (now, now + wait))
        if key in self._pending:
            due = min(max(due, now + self.quiet), first + max(self.max_delay, wait))
        self._pending[key] = (first, due)

    def pop_due(self, now: float) -> list[Hashable]:
        """The targets due at ``now``, oldest change first; they leave the queue."""
        due = sorted((first, repr(k), k) for k, (first, at) in self._pending.items() if at <= now)
        for _, _, key in due:
            del self._pending[key]
        return [key for _, _, key in due]

    def next_due(self) -> float | None:
        return min((at for _, at in self._pending.values()), default=None)

    def clear(self) -> None:
        self._pending.clear()

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._pending


@dataclass
class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up."""

    rate: float = 10.0
    burst: int = 20
    _tokens: float | None = None
    _at: float = 0.0

    def wait(self, now: float) -> float:
        """Seconds until a token is available (0: take one now with :meth:`take`)."""
        tokens = self._level(now)
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def take(self, now: float) -> bool:
        """Take a token if one is available."""
        tokens = self._level(now)
        if tokens < 1:
            return False
        self._tokens = tokens - 1
        return True

    def _level(self, now: float) -> float:
        if self._tokens is None:
            self._tokens, self._at = float(self.burst), now
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        self._at = now
        return self._tokens


@dataclass
class Backoff:
    """Exponential retry delay per key: ``initial`` doubling to ``maximum``; reset by success."""

    initial: float = 1.0
    maximum: float = 300.0
    _failures: dict[Hashable, int] = field(default_factory=dict)

    def failed(self, key: Hashable) -> float:
        """Record a failure of ``key``; the delay before its next attempt."""
        count = self._failures.get(key, 0)
        self._failures[key] = count + 1
        return min(self.maximum, self.initial * 2**count)

    def succeeded(self, key: Hashable) -> None:
        self._failures.pop(key, None)

    def failures(self, key: Hashable) -> int:
        return self._failures.get(key, 0)
