"""Background reconciliation of generated Services (``serve --reconcile``).

* :mod:`.desired`: what to apply, from the mutation itself (pure);
* :mod:`.changes`: which Services a change affects (pure);
* :mod:`.queue`: debounce, rate limit, retry backoff (pure);
* :mod:`.lease`: leader election on a Lease;
* :mod:`.reconciler`: the loop and its I/O; :mod:`.wiring`: its ``serve`` options.
"""

from .desired import FIELD_MANAGER, Desired, Fields, Owned, Plan, desired_fields, owned_by, plan
from .reconciler import MODES, Reconciler, ReconcilerConfig, generated_service_view, service_kinds

__all__ = [
    "FIELD_MANAGER",
    "MODES",
    "Desired",
    "Fields",
    "Owned",
    "Plan",
    "Reconciler",
    "ReconcilerConfig",
    "desired_fields",
    "generated_service_view",
    "owned_by",
    "plan",
    "service_kinds",
]
