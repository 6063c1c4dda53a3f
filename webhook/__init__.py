"""routewarden: admission webhook for shared Gateway API gateways.

The public surface is the engine and its values; everything else is an implementation
detail of the server and the CLI::

    from webhook import ClusterState, decide, load_paths, parse_review

    policies = load_paths([Path("policies")])
    state = ClusterState.from_objects(manifests)
    decision = decide(parse_review(review), policies, state, webhook="validate")
"""

__version__ = "0.1.0"

from .admission import AdmissionRequest, ReviewError, build_response, parse_review
from .decision import Decision, Mode, Violation
from .engine import decide
from .offline import evaluate
from .policy.loader import PolicyLoadError, PolicyStore, load_paths
from .policy.model import PolicySet
from .state.store import ClusterState

__all__ = [
    "AdmissionRequest",
    "ClusterState",
    "Decision",
    "Mode",
    "PolicyLoadError",
    "PolicySet",
    "PolicyStore",
    "ReviewError",
    "Violation",
    "__version__",
    "build_response",
    "decide",
    "evaluate",
    "load_paths",
    "parse_review",
]
