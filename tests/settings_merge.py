"""Nested settings overrides for tests: `merge(base, {"http": {"max_body_bytes": 1024}})`."""

from __future__ import annotations

from typing import Any


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """`base` with `overrides` applied, nested dicts merged key by key (neither changed)."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged
