"""Telemetry kept in this process's memory, read back by sample name (tests, tools)."""

from __future__ import annotations

from collections.abc import Mapping

from core.platform.telemetry import FAMILIES, FamilyTelemetry, MetricFamily

_SampleKey = tuple[str, tuple[tuple[str, str], ...]]


class InMemoryTelemetry(FamilyTelemetry):
    """Every series as Prometheus would expose it, without the histogram buckets:
    `value("portico_jobs_total", {"name": "x", "outcome": "done"})`, like
    `CollectorRegistry.get_sample_value` (None: never recorded)."""

    def __init__(self) -> None:
        self._samples: dict[_SampleKey, float] = {}
        for family in FAMILIES:
            for labels in family.known:
                self._samples[_key(f"{family.name}_total", family, labels)] = 0.0

    def add(self, family: MetricFamily, labels: tuple[str, ...], amount: float) -> None:
        self._bump(_key(f"{family.name}_total", family, labels), amount)

    def observe(self, family: MetricFamily, labels: tuple[str, ...], seconds: float) -> None:
        self._bump(_key(f"{family.name}_count", family, labels), 1)
        self._bump(_key(f"{family.name}_sum", family, labels), seconds)

    def set(self, family: MetricFamily, labels: tuple[str, ...], value: float) -> None:
        self._samples[_key(family.name, family, labels)] = float(value)

    def value(self, name: str, labels: Mapping[str, str] | None = None) -> float | None:
        return self._samples.get((name, tuple(sorted((labels or {}).items()))))

    def samples(self) -> dict[_SampleKey, float]:
        return dict(self._samples)

    def _bump(self, key: _SampleKey, amount: float) -> None:
        self._samples[key] = self._samples.get(key, 0.0) + amount


def _key(sample: str, family: MetricFamily, labels: tuple[str, ...]) -> _SampleKey:
    if len(labels) != len(family.labels):
        raise ValueError(f"{family.name} takes labels {family.labels}, got {labels}")
    return sample, tuple(sorted(zip(family.labels, labels, strict=True)))
