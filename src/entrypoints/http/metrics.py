"""Prometheus metrics, one registry per app (so several apps in one process never collide)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class HttpMetrics:
    """Request count and latency by method, route template and status; rate-limit
    refusals by rule and requests let through while the rate-limit store was down.

    Labels use the route *template* (`/api/v1/auth/sessions/{session_id:int}`), never the
    raw path, and unknown methods fold into `OTHER`, so cardinality stays bounded.
    """

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "portico_http_requests_total",
            "HTTP requests answered.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "portico_http_request_duration_seconds",
            "Time to answer HTTP requests.",
            ("method", "route", "status"),
            buckets=_BUCKETS,
            registry=self.registry,
        )
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

        # (method, route, status) -> the two labelled children: a label lookup takes a
        # lock and builds a key, per request; the set of triples is bounded (above).
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in _METHODS else "OTHER"
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            labels = (method, route, str(status))
            children = (self.requests.labels(*labels), self.latency.labels(*labels))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
