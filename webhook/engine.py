"""The engine (being filled in)."""

from __future__ import annotations

from .admission import AdmissionRequest
from .decision import Decision, allowed


def decide(request: AdmissionRequest, policies, state, *, webhook: str = "validate") -> Decision:
    return allowed()
