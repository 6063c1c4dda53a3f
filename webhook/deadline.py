"""The deadline kube-apiserver gives each webhook call.

kube-apiserver appends ``?timeout=<timeoutSeconds>s`` (a Go ``time.Duration`` string:
``5s``, ``10s``, ``1m``, ``500ms``, ``1m30s``) and stops waiting after it, applying
the webhook's ``failurePolicy``. An answer sent later is read by nobody, and a decision
made on a stale view must not pretend to be fresh, so the server answers before the
deadline minus a safety margin or not with a decision at all.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

# kube-apiserver's default when a configuration sets no timeoutSeconds.
DEFAULT_TIMEOUT = 10.0
# Leave room for the response to travel back; 10% of the budget, at most one second.
MAX_MARGIN = 1.0
MARGIN_FRACTION = 0.1

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration string; raises ValueError for anything Go would reject.

    Negative and zero durations are rejected too: as a deadline they mean nothing.
    """
    if not text or len(text) > 64:
        raise ValueError(f"invalid duration {text!r}")
    position, total = 0, 0.0
    while position < len(text):
        match = _PART.match(text, position)
        if not match:
            raise ValueError(f"invalid duration {text!r}")
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if total <= 0:
        raise ValueError(f"duration {text!r} is not positive")
    return total


class Deadline(NamedTuple):
    """When to stop trying to answer, on the event loop's monotonic clock (a tuple: one is
    made for every review)."""

    started: float
    timeout: float

    @property
    def margin(self) -> float:
        return min(MAX_MARGIN, self.timeout * MARGIN_FRACTION)

    @property
    def at(self) -> float:
        """The last moment an answer is still worth sending."""
        return self.started + self.timeout - self.margin

    def remaining(self, now: float) -> float:
        return self.at - now

    def expired(self, now: float) -> bool:
        return now >= self.at


@functools.lru_cache(maxsize=64)  # one apiserver sends one value per webhook; bounded against odd clients
def request_timeout(query_value: str | None) -> float:
    """The timeout from ``?timeout=``; the apiserver default when absent or unreadable."""
    if query_value is None:
        return DEFAULT_TIMEOUT
    try:
        return parse_go_duration(query_value)
    except ValueError:
        return DEFAULT_TIMEOUT
