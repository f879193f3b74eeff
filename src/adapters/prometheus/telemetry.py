"""The core's telemetry as Prometheus families, on a registry of its own (one per runtime,
so several apps or runtimes in one process never collide)."""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from core.platform.telemetry import (
    CACHE_REQUESTS,
    FAMILIES,
    JOB_DURATION,
    LLM_DURATION,
    RATE_LIMIT_DECISIONS,
    FamilyTelemetry,
    MetricFamily,
)

# Jobs run from milliseconds (a mail) to minutes (a sweep); model calls for seconds.
_BUCKETS: dict[str, tuple[float, ...]] = {
    JOB_DURATION.name: (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0),
    LLM_DURATION.name: (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0),
}
_DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _Histogram:
    """One series: its count, the sum of its observations, and how many fell in each
    bucket (the last slot: above every bound)."""

    __slots__ = ("bounds", "buckets", "count", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.count = 0
        self.total = 0.0
        self.buckets = [0] * (len(bounds) + 1)

    def observe(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.buckets[bisect.bisect_left(self.bounds, value)] += 1

    def cumulative(self) -> list[tuple[str, float]]:
        found: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), self.buckets, strict=True):
            running += count
            found.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return found


class PrometheusTelemetry(FamilyTelemetry, Collector):
    """Every family of `core.platform.telemetry.FAMILIES`, registered on `registry` at
    construction whatever is recorded later (known label values at zero).

    Updates are plain numbers with no lock, as in the HTTP metrics: the event loop's
    thread is the only writer, and a scrape copies each table before it reads it
    (prometheus_client's own Counter takes a lock on every update).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._counters: dict[str, dict[tuple[str, ...], float]] = {}
        self._histograms: dict[str, dict[tuple[str, ...], _Histogram]] = {}
        self._gauges: dict[str, dict[tuple[str, ...], float]] = {}
        for family in FAMILIES:
            if family.kind == "counter":
                self._counters[family.name] = dict.fromkeys(family.known, 0.0)
            elif family.kind == "histogram":
                self._histograms[family.name] = {}
            else:
                self._gauges[family.name] = {}
        # The two events of nearly every request, updated directly (the generic `add`
        # costs a call and a lookup more; the contract suite holds them to the same
        # result).
        self._decisions = self._counters[RATE_LIMIT_DECISIONS.name]
        self._lookups = self._counters[CACHE_REQUESTS.name]
        self.registry.register(self)

    def rate_limit_decision(self, rule: str, allowed: bool) -> None:
        key = (rule, "allowed" if allowed else "refused")
        series = self._decisions
        series[key] = series.get(key, 0.0) + 1

    def cache_request(self, cache: str, hit: bool) -> None:
        key = (cache, "hit" if hit else "miss")
        series = self._lookups
        series[key] = series.get(key, 0.0) + 1

    def add(self, family: MetricFamily, labels: tuple[str, ...], amount: float) -> None:
        series = self._counters[family.name]
        series[labels] = series.get(labels, 0.0) + amount

    def observe(self, family: MetricFamily, labels: tuple[str, ...], seconds: float) -> None:
        series = self._histograms[family.name]
        histogram = series.get(labels)
        if histogram is None:
            bounds = _BUCKETS.get(family.name, _DEFAULT_BUCKETS)
            histogram = series[labels] = _Histogram(bounds)
        histogram.observe(seconds)

    def set(self, family: MetricFamily, labels: tuple[str, ...], value: float) -> None:
        self._gauges[family.name][labels] = float(value)

    # --- Collector ----------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        for family in FAMILIES:
            yield self._family(family)

    def describe(self) -> Iterator[Metric]:
        for family in FAMILIES:
            yield _empty(family)

    def _family(self, family: MetricFamily) -> Metric:
        metric = _empty(family)
        if isinstance(metric, HistogramMetricFamily):
            for labels, histogram in list(self._histograms[family.name].items()):
                metric.add_metric(list(labels), histogram.cumulative(), histogram.total)
            return metric
        table = self._counters if family.kind == "counter" else self._gauges
        assert isinstance(metric, CounterMetricFamily | GaugeMetricFamily)
        for labels, value in list(table[family.name].items()):
            metric.add_metric(list(labels), value)
        return metric


def _empty(family: MetricFamily) -> CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily:
    labels = list(family.labels)
    if family.kind == "counter":
        return CounterMetricFamily(family.name, family.help, labels=labels)
    if family.kind == "histogram":
        return HistogramMetricFamily(family.name, family.help, labels=labels)
    return GaugeMetricFamily(family.name, family.help, labels=labels)
