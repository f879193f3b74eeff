"""Recording the spans of a runtime in tests: no exporter, no collector."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

# Tracing on, nothing exported: spans are made, and tests add their own recorder.
TRACING_ON = {"enabled": True, "exporter": "none"}


def record_spans(tracing: Any) -> InMemorySpanExporter:
    """Every span `tracing` (a runtime's `Tracing`) finishes from now on, kept in memory."""
    assert tracing is not None, "tracing is off in this runtime"
    exporter = InMemorySpanExporter()
    tracing.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def trace_hex(span: ReadableSpan) -> tuple[str, str]:
    """A span's (trace id, span id) as the logs write them."""
    context = span.get_span_context()
    assert context is not None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def children_of(spans: Any, parent: ReadableSpan) -> list[ReadableSpan]:
    parent_context = parent.get_span_context()
    assert parent_context is not None
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent_context.span_id]
