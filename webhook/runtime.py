"""Runtime: what the server holds for its lifetime (policies, cluster view, telemetry).

The server's handlers call :meth:`Runtime.review`; everything it calls is synchronous
and pure apart from reading the current policy set and the cluster view.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .admission import AdmissionRequest
from .decision import Decision
from .engine import decide
from .freshness import DEFAULT_CONFIRM_INTERVAL, view_max_age
from .policy.loader import PolicyStore
from .state.store import ClusterState
from .telemetry import Telemetry


@dataclass
class Runtime:
    policies: PolicyStore
    state: ClusterState
    telemetry: Telemetry = field(default_factory=Telemetry)
    # Online the view must have synced before we answer; offline (--dev) it is built from files.
    require_sync: bool = True
    # Cap on how long a healthy watch goes unconfirmed (serve --watch-confirm-interval).
    watch_confirm_interval: float = DEFAULT_CONFIRM_INTERVAL

    def review(self, request: AdmissionRequest, *, webhook: str) -> Decision:
        return decide(request, self.policies.current, self.state, webhook=webhook)

    def view_max_age(self) -> float:
        """The age beyond which the cluster view counts as stale (see :mod:`webhook.freshness`)."""
        return view_max_age(self.policies.current, self.watch_confirm_interval)

    def readiness(self) -> tuple[bool, list[str]]:
        """Whether to take traffic, and if not, why."""
        problems: list[str] = []
        if not self.policies.loaded:
            problems.append("policies not loaded: " + "; ".join(str(e) for e in self.policies.errors))
        if self.require_sync and not self.state.synced:
            pending = sorted(k for k in self.state.expected_kinds if not self.state.is_synced(k))
            problems.append("cluster view not synced: " + ", ".join(pending))
        return (not problems, problems)
