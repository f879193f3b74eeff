"""Structured logs: JSON lines on stdout, with secrets redacted before rendering."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

# Any field whose name looks like it could hold a credential is masked, whatever its value.
_SECRET_KEY = re.compile(
    r"pass(word)?|secret|token|cookie|authorization|csrf|session_id|api_key|hash", re.IGNORECASE
)
REDACTED = "[redacted]"


def redact_secrets(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event):
        if key != "event" and _SECRET_KEY.search(key):
            event[key] = REDACTED
    return event


def configure_logging(level: str = "INFO", *, json: bool = True) -> None:
    """Idempotent; safe to call once per runtime start."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    logging.basicConfig(stream=sys.stdout, level=numeric, format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # No file argument: each logger writes to whatever sys.stdout is when it is made,
        # so redirected or captured output (tests, supervisors) is honoured.
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=False,
    )
