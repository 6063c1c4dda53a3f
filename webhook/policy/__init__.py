"""Policies: typed model, JSON Schema, loading with hot reload."""
