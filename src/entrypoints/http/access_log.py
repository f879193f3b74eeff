"""The access log: one JSON line per request, written straight to stdout.

It is the one log line every request pays for, so it skips structlog's processor chain:
its fields are fixed and hold nothing secret (method, route template, status, duration,
request id, user id), the timestamp is stamped here and the line is encoded once with
orjson. Under load, lines are flushed in batches: a line waits at most
`FLUSH_INTERVAL_SECONDS` (a flush is scheduled whenever one is skipped), so a burst costs
a few writes a second instead of one system call per request. Everything else logs
through structlog as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any

import orjson

FLUSH_INTERVAL_SECONDS = 0.1


class AccessLog:
    """Writes `http_request` lines when the root logger's level lets INFO through."""

    def __init__(self) -> None:
        self.enabled = logging.getLogger().isEnabledFor(logging.INFO)
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
        if not self.enabled:
            return
        line = orjson.dumps(
            {
                "event": "http_request",
                "level": "info",
                "timestamp": datetime.now(UTC),
                "request_id": request_id,
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": duration_ms,
                "user_id": user_id,
            },
            option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_UTC_Z,
        )
        stream = sys.stdout
        buffer: Any = getattr(stream, "buffer", None)
        if buffer is None:
            stream.write(line.decode("utf-8"))
        else:
            buffer.write(line)
        if self._flush_scheduled:
            return
        now = time.monotonic()
        if now - self._flushed_at >= FLUSH_INTERVAL_SECONDS:
            self._flush(now)
            return
        self._flush_scheduled = True
        asyncio.get_running_loop().call_later(FLUSH_INTERVAL_SECONDS, self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        self._flush(time.monotonic())

    def _flush(self, now: float) -> None:
        self._flushed_at = now
        # A closed or broken stdout must not fail requests.
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
