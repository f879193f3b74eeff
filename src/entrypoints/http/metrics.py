"""Prometheus metrics, one registry per app (so several apps in one process never collide)."""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_LABELS = ("method", "route", "status")


class _Series:
    """One (method, route, status): its count, the sum of its durations, and how many
    fell in each latency bucket (the last slot: above every bound)."""

    __slots__ = ("buckets", "count", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.buckets = [0] * (len(_BUCKETS) + 1)


class _RequestCollector(Collector):
    """`portico_http_requests_total` and `portico_http_request_duration_seconds`.

    Every request updates plain numbers, with no lock: the event loop's thread is the
    only writer, and the scrape (`/metrics`, on the same loop) the only reader.
    prometheus_client's own Counter and Histogram take a lock per update, which on the
    cheapest request was a visible share of its time.
    """

    def __init__(self) -> None:
        self.series: dict[tuple[str, str, int], _Series] = {}

    def observe(self, key: tuple[str, str, int], seconds: float) -> None:
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = _Series()
        series.count += 1
        series.total += seconds
        series.buckets[bisect.bisect_left(_BUCKETS, seconds)] += 1

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        requests = CounterMetricFamily(
            "portico_http_requests", "HTTP requests answered.", labels=_LABELS
        )
        latency = HistogramMetricFamily(
            "portico_http_request_duration_seconds",
            "Time to answer HTTP requests.",
            labels=_LABELS,
        )
        for (method, route, status), series in list(self.series.items()):
            labels = [method, route, str(status)]
            requests.add_metric(labels, series.count)
            cumulative, buckets = 0, []
            for bound, count in zip((*_BUCKETS, float("inf")), series.buckets, strict=True):
                cumulative += count
                buckets.append((_bound(bound), cumulative))
            latency.add_metric(labels, buckets, series.total)
        yield requests
        yield latency

    def describe(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        yield CounterMetricFamily("portico_http_requests", "HTTP requests answered.")
        yield HistogramMetricFamily(
            "portico_http_request_duration_seconds", "Time to answer HTTP requests."
        )


def _bound(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


class HttpMetrics:
    """Request count and latency by method, route template and status; rate-limit
    refusals by rule and requests let through while the rate-limit store was down.

    Labels use the route *template* (`/api/v1/auth/sessions/{session_id:int}`), never the
    raw path, and unknown methods fold into `OTHER`, so cardinality stays bounded.
    """

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self._requests = _RequestCollector()
        self.registry.register(self._requests)
        self.rate_limited = Counter(
            "portico_rate_limited_total",
            "Requests refused with 429, by rule (general or the route's own).",
            ("rule",),
            registry=self.registry,
        )
        self.rate_limit_fail_open = Counter(
            "portico_rate_limit_fail_open_total",
            "Requests let through unchecked because the rate-limit store was down.",
            registry=self.registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in _METHODS else "OTHER"
        self._requests.observe((method, route, status), seconds)

    def render(self, *more: CollectorRegistry) -> bytes:
        """This app's families, then those of `more` (the runtime's telemetry: its own
        registry, so the families are apart and the texts concatenate)."""
        return b"".join(generate_latest(registry) for registry in (self.registry, *more))
