"""Telemetry interface (placeholder implementation; replaced by the OpenTelemetry one)."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator


class AdmissionRecorder:
    def finish(self, decision: Any) -> None:  # pragma: no cover - interface
        pass


class Telemetry:
    @classmethod
    def setup(cls, **_: Any) -> "Telemetry":
        return cls()

    @contextlib.contextmanager
    def admission(self, *, webhook: str, request: Any, request_id: str | None = None) -> Iterator[AdmissionRecorder]:
        yield AdmissionRecorder()

    def review_rejected(self, *, webhook: str, status: int, reason: str) -> None:
        pass

    def metrics(self) -> tuple[bytes, str]:
        return b"", "text/plain; version=0.0.4"

    def policy_reloaded(self, *, ok: bool) -> None:
        pass

    def certificate_expiry(self, not_after_epoch: float) -> None:
        pass

    def watch_state(self, state: Any) -> None:
        pass

    def shutdown(self) -> None:
        pass
