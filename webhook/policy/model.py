"""The policy model (being filled in)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PolicySet:
    tenancy: tuple = ()
    services: tuple = ()
    sources: tuple[str, ...] = ()
