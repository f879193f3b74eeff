"""Structured logs: JSON lines on stdout, with secrets redacted before rendering.

Two sources end in the same renderer: structlog loggers (adapters, entrypoints) and the
standard library's `logging` (the core, which imports the stdlib only, and libraries).
A stdlib record's `extra={...}` fields become JSON fields like structlog's key-values.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any

import orjson
import structlog

# Any field whose name looks like it could hold a credential is masked, whatever its value.
_SECRET_KEY = re.compile(
    r"pass(word)?|secret|token|cookie|authorization|csrf|session_id|api_key|hash", re.IGNORECASE
)
REDACTED = "[redacted]"

# The id of the request being served (set by the HTTP layer for the request's duration),
# added to every log line written meanwhile. A plain ContextVar: cheaper per request
# than binding structlog's context, and the only thing a request binds.
REQUEST_ID: ContextVar[str | None] = ContextVar("portico_request_id", default=None)


def add_request_id(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    request_id = REQUEST_ID.get()
    if request_id is not None:
        event.setdefault("request_id", request_id)
    return event


def redact_secrets(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event):
        if key != "event" and _SECRET_KEY.search(key):
            event[key] = REDACTED
    return event


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stdout` is at each record, so redirected or captured
    output (tests, supervisors) is honoured."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


class _StdoutBytesLogger:
    """structlog's output: one line of bytes per event on whatever `sys.stdout` is at
    that moment (so redirected or captured output is honoured), flushed at once."""

    __slots__ = ()

    def msg(self, message: bytes | str) -> None:
        line = message if isinstance(message, bytes) else message.encode("utf-8")
        stream = sys.stdout
        buffer = getattr(stream, "buffer", None)
        if buffer is None:  # a text-only stream (some test captures)
            stream.write(line.decode("utf-8") + "\n")
        else:
            buffer.write(line + b"\n")
        stream.flush()

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


def _logger_factory(*_args: Any) -> _StdoutBytesLogger:
    return _StdoutBytesLogger()


def _orjson_text(value: Any, **_: Any) -> str:
    return orjson.dumps(value, default=str).decode("utf-8")


def _orjson_bytes(value: Any, **_: Any) -> bytes:
    return orjson.dumps(value, default=str)


def configure_logging(level: str = "INFO", *, json: bool = True, trace_ids: bool = False) -> None:
    """Idempotent; safe to call once per runtime start (each call sets the whole chain).

    `trace_ids` (tracing enabled): every line written inside a span carries its
    `trace_id` and `span_id`. Off, OpenTelemetry is not imported.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    # orjson: the access log writes a line per request, and the stdlib encoder was a
    # visible share of a cheap request's time.
    text_renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_orjson_text)
        if json
        else structlog.dev.ConsoleRenderer()
    )
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_orjson_bytes) if json else text_renderer
    )
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    context: list[Any] = [add_request_id]
    if trace_ids:
        from entrypoints.bootstrap.tracing import add_trace_ids

        context.append(add_trace_ids)
    root = logging.getLogger()
    root.setLevel(numeric)
    handler = next((h for h in root.handlers if isinstance(h, _StdoutHandler)), None)
    if handler is None:
        handler = _StdoutHandler()
        root.addHandler(handler)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.stdlib.ExtraAdder(),
                *context,
                timestamper,
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                redact_secrets,
                structlog.processors.format_exc_info,
                text_renderer,
            ],
        )
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            *context,
            structlog.processors.add_log_level,
            timestamper,
            redact_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_logger_factory,
        cache_logger_on_first_use=False,
    )
