"""Billing's JSON columns and the core's value objects, converted at the boundary.

Features are stored as sorted lists of codes (a set has no JSON form), limits as
`{name: {"amount": n, "period": "day"}}`, limit boosts as `{name: n}`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from core.billing.model import LimitSpec, Period


def features_to_json(features: Iterable[str]) -> list[str]:
    return sorted(features)


def features_from_json(stored: Iterable[str]) -> frozenset[str]:
    return frozenset(stored)


def limits_to_json(limits: Mapping[str, LimitSpec]) -> dict[str, dict[str, Any]]:
    return {
        name: {"amount": spec.amount, "period": spec.period.value}
        for name, spec in sorted(limits.items())
    }


def limits_from_json(stored: Mapping[str, Mapping[str, Any]]) -> dict[str, LimitSpec]:
    return {
        name: LimitSpec(int(spec["amount"]), Period(spec["period"]))
        for name, spec in stored.items()
    }


def boosts_to_json(boosts: Mapping[str, int]) -> dict[str, int]:
    return dict(sorted(boosts.items()))


def boosts_from_json(stored: Mapping[str, Any]) -> dict[str, int]:
    return {name: int(amount) for name, amount in stored.items()}
