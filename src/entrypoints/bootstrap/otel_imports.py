"""OpenTelemetry stays out of a process that does not trace.

redis-py (8.x) probes for OpenTelemetry when it is imported, for metrics of its own
(opt-in, unused here), and loads the API and, when installed (the `tracing` extra, the
dev environment), the SDK's metrics: megabytes and import time in every process that
talks to Redis (sessions, cache, a Celery broker), tracing on or off. Its probe is a
`try: import ... except ImportError`, so with tracing off we make the package
unimportable (`None` in `sys.modules`, Python's documented way) and redis-py takes its
"not installed" path. No other installed library imports OpenTelemetry but Starlette's
own middleware module, which Portico does not use.

Called first by every process with its settings: `create_app`, `start_runtime` and the
Celery app (before Celery connects to a Redis broker). A process that already imported
OpenTelemetry (a test session) is left as it is.
"""

from __future__ import annotations

import sys

from entrypoints.bootstrap.tracing_settings import TracingSettings

_PACKAGE = "opentelemetry"


def opentelemetry_imports(settings: TracingSettings) -> None:
    """Tracing off: OpenTelemetry unimportable until a runtime enables it; on: allowed."""
    if settings.enabled:
        if _PACKAGE in sys.modules and sys.modules[_PACKAGE] is None:
            del sys.modules[_PACKAGE]
    else:
        sys.modules.setdefault(_PACKAGE, None)  # type: ignore[arg-type]
