"""Prometheus: the core's telemetry as metric families on a `CollectorRegistry`."""
