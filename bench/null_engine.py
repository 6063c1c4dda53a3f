"""``routewarden serve`` with a decision that costs nothing: what the request path costs outside the rules.

``bench/run.py --null-engine`` starts the server through this module instead of
``python -m webhook``. Everything a review goes through is the production code (TLS,
HTTP, the middleware, the envelope, telemetry, the response) except ``decide()``, which
answers "allowed" at once, as the baseline does. The ratio to the baseline is then the
most the rest of the server allows, however fast the rules become.

    python bench/null_engine.py serve --policies ... --state ...   # the arguments of `routewarden`
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's webhook, as `python -m` would

import webhook.runtime
from webhook.admission import AdmissionRequest
from webhook.cli import main
from webhook.decision import Decision, allowed

ALLOWED = allowed()


def decide(request: AdmissionRequest, policies: Any, state: Any, **options: Any) -> Decision:
    """Allowed, without reading anything."""
    return ALLOWED


if __name__ == "__main__":
    webhook.runtime.decide = decide  # what Runtime.review calls for every review
    sys.exit(main(sys.argv[1:]))
