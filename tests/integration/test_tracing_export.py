"""The OTLP exporter (`PORTICO_TRACING__EXPORTER=otlp`): spans reach a collector over
HTTP as protobuf, with the service name. The collector is a local fake on a free port."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.trace import SpanKind

from entrypoints.bootstrap.tracing import start_tracing
from entrypoints.bootstrap.tracing_settings import TracingSettings

pytestmark = pytest.mark.integration


class _Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[str]:
    _Collector.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    finally:
        server.shutdown()
        server.server_close()


def test_spans_are_exported_to_the_otlp_endpoint(collector: str) -> None:
    tracing = start_tracing(
        TracingSettings(
            enabled=True, exporter="otlp", otlp_endpoint=collector, service_name="portico-x"
        )
    )
    with tracing.tracer.start_as_current_span("GET /api/v1/users/me", kind=SpanKind.SERVER):
        pass
    tracing.shutdown()  # exports the batch

    ((path, content_type, body),) = _Collector.received
    assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
    request = ExportTraceServiceRequest.FromString(body)
    (resource_spans,) = request.resource_spans
    attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert attributes["service.name"] == "portico-x"
    names = [s.name for scope in resource_spans.scope_spans for s in scope.spans]
    assert names == ["GET /api/v1/users/me"]
