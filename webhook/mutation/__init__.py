"""Mutations (being written)."""

from __future__ import annotations

from typing import Any, Callable


def mutators_for(request: Any) -> list[Callable[..., list[str]]]:
    return []
