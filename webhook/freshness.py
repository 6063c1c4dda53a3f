"""How old the cluster view may get before it is stale, and how often watches confirm it.

A watched kind is *current* while the apiserver keeps confirming its watch: a list, an
event, a bookmark, or a watch resumed from the kind's resourceVersion. A kind that nobody
writes gets no events and, from kube-apiserver, no bookmarks either, so the informer
resumes every watch at least once per *confirmation interval*; a healthy kind is
therefore never older than about one interval, however quiet. An apiserver that stops
answering confirms nothing, and the view ages past ``staleState.maxAgeSeconds``.

The interval is a third of the smallest ``maxAgeSeconds`` of the loaded policies, capped
by ``serve --watch-confirm-interval``: a failed resume and its backoff still fit in the
limit before a quiet kind would count as stale.
"""

from __future__ import annotations

from .policy.model import PolicySet

DEFAULT_CONFIRM_INTERVAL = 300.0  # seconds; client-go restarts its watches every 5 to 10 minutes
CONFIRMATIONS_PER_MAX_AGE = 3


def policy_max_age(policies: PolicySet) -> float | None:
    """The smallest ``staleState.maxAgeSeconds`` of the loaded policies (None: none sets one)."""
    return min((p.stale_max_age for p in policies.tenancy if p.stale_max_age is not None), default=None)


def view_max_age(policies: PolicySet, confirm_interval: float = DEFAULT_CONFIRM_INTERVAL) -> float:
    """The age beyond which the view is stale: the strictest policy's ``maxAgeSeconds``,
    or, when no policy sets one, as many confirmation intervals as a limit allows."""
    ceiling = confirm_interval * CONFIRMATIONS_PER_MAX_AGE
    limit = policy_max_age(policies)
    return ceiling if limit is None else min(limit, ceiling)


def confirm_interval(policies: PolicySet, ceiling: float = DEFAULT_CONFIRM_INTERVAL) -> float:
    """The longest a healthy watch may go without being confirmed."""
    return view_max_age(policies, ceiling) / CONFIRMATIONS_PER_MAX_AGE
