"""Gateway API semantics (being filled in)."""
