"""The access log: one JSON line per request, on stdout.

It is the one log line every request pays for, so it skips structlog's processor chain:
its fields are fixed and hold nothing secret (method, route template, status, duration,
request id, user id), the timestamp is stamped here and the line is encoded once with
orjson. Lines are written in batches: a line waits at most `FLUSH_INTERVAL_SECONDS`
(after a quiet spell the first line goes out at once), so a busy server makes a few
writes a second instead of a system call per request, whatever buffering stdout has
(`PYTHONUNBUFFERED=1` makes every write one). A batch never splits a line; relative to
other log lines an access line may come up to that interval late. `flush` writes what
is pending (at shutdown, and for tests that read the output).

With tracing enabled the line also carries the request's `trace_id` and `span_id`, read
when the line is made (inside the request's server span), not when it is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

FLUSH_INTERVAL_SECONDS = 0.1
MAX_PENDING_BYTES = 64 * 1024

# The current span's (trace id, span id) in hex, or None outside a span.
TraceIds = Callable[[], tuple[str, str] | None]


class AccessLog:
    """Writes `http_request` lines when the root logger's level lets INFO through (read
    at the first line: logging is configured when the runtime starts)."""

    def __init__(self, *, trace_ids: TraceIds | None = None) -> None:
        self._trace_ids = trace_ids
        self._enabled: bool | None = None
        self._pending = bytearray()
        self._flushed_at = 0.0
        self._flush_scheduled = False

    def request(
        self,
        *,
        request_id: str,
        method: str,
        route: str,
        status: int,
        duration_ms: float,
        user_id: int | None,
    ) -> None:
        if self._enabled is None:
            self._enabled = logging.getLogger().isEnabledFor(logging.INFO)
        if not self._enabled:
            return
        line = {
            "event": "http_request",
            "level": "info",
            "timestamp": datetime.now(UTC),
            "request_id": request_id,
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": duration_ms,
            "user_id": user_id,
        }
        if self._trace_ids is not None and (ids := self._trace_ids()) is not None:
            line["trace_id"], line["span_id"] = ids
        self._pending += orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_UTC_Z)
        if self._flush_scheduled and len(self._pending) < MAX_PENDING_BYTES:
            return
        now = time.monotonic()
        if now - self._flushed_at >= FLUSH_INTERVAL_SECONDS or not self._schedule():
            self.flush()

    def flush(self) -> None:
        """Write every pending line now."""
        self._flushed_at = time.monotonic()
        if not self._pending:
            return
        data, self._pending = bytes(self._pending), bytearray()
        stream = sys.stdout
        # A closed or broken stdout must not fail requests.
        with contextlib.suppress(OSError, ValueError):
            buffer: Any = getattr(stream, "buffer", None)
            if buffer is None:
                stream.write(data.decode("utf-8"))
            else:
                buffer.write(data)
            stream.flush()

    def _schedule(self) -> bool:
        if self._flush_scheduled:
            return True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        self._flush_scheduled = True
        loop.call_later(FLUSH_INTERVAL_SECONDS, self._scheduled_flush)
        return True

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        self.flush()
