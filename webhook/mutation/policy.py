"""ServicePolicy (being written)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True, slots=True)
class ServicePolicy:
    name: str
    source: str = ""

    @classmethod
    def from_document(cls, doc: Mapping[str, Any], *, source: str = "") -> "ServicePolicy":
        return cls(name=doc["metadata"]["name"], source=source)
