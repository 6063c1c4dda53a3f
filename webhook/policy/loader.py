"""Load policies from a directory (being filled in)."""

from __future__ import annotations

from pathlib import Path

from .model import PolicySet


class PolicyStore:
    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory) if directory else None
        self.current = PolicySet()
        self.loaded = directory is None
        self.errors: list[str] = []

    def reload(self) -> bool:
        self.loaded = True
        return True
