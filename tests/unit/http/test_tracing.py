"""Tracing through the HTTP app: a server span per request named by its route, SQL
spans under it, the request's trace id in its log lines; and with tracing off, none of
it. Spans are recorded in memory (exporter `none` plus a recorder): no collector."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers
from opentelemetry.trace import SpanKind, StatusCode
from starlette.testclient import TestClient

from entrypoints.bootstrap.container import build_container
from entrypoints.http.app import create_app
from tests.tracing_support import TRACING_ON, children_of, record_spans, trace_hex
from tests.unavailable import UnreachableRateLimiter
from tests.unit.http.conftest import MakeClient
from tests.unit.http.profiles import profile_settings
from tests.unit.http.support import Browser

CONVERSATION_TEMPLATE = "/api/v1/conversations/{conversation_id:int}"


def _status(span: Any) -> Any:
    attributes = span.attributes
    return attributes.get("http.status_code", attributes.get("http.response.status_code"))


def _server_spans(exporter: Any) -> list[Any]:
    return [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]


def _log_lines(capsys: pytest.CaptureFixture[str], client: TestClient) -> list[dict[str, Any]]:
    client.app.state.access_log.flush()  # type: ignore[attr-defined]
    lines = capsys.readouterr().out.splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


@pytest.mark.parametrize("profile", ["memory"])
def test_a_request_makes_a_server_span_named_by_its_route_template(
    make_client: MakeClient,
) -> None:
    client = make_client(tracing=TRACING_ON)
    spans = record_spans(client.app.state.runtime.tracing)  # type: ignore[attr-defined]
    browser = Browser(client)
    browser.signup()
    spans.clear()

    answer = browser.get("/api/v1/conversations/987654?secret=hunter2")
    assert answer.status_code == 404

    (server,) = _server_spans(spans)
    assert server.name == f"GET {CONVERSATION_TEMPLATE}"
    assert "987654" not in server.name
    assert server.attributes["http.route"] == CONVERSATION_TEMPLATE
    assert _status(server) == 404
    # The query string (where an OAuth callback's code rides) stays out of the span.
    assert not any("hunter2" in str(value) for value in server.attributes.values())


@pytest.mark.parametrize("profile", ["memory"])
def test_probes_and_scrapes_are_not_traced(make_client: MakeClient) -> None:
    client = make_client(tracing=TRACING_ON)
    spans = record_spans(client.app.state.runtime.tracing)  # type: ignore[attr-defined]
    for path in ("/health", "/ready", "/metrics"):
        assert client.get(path).status_code == 200
    assert _server_spans(spans) == []
    assert client.get("/api/v1/auth/csrf").status_code == 200  # control: traced
    assert [s.name for s in _server_spans(spans)] == ["GET /api/v1/auth/csrf"]


@pytest.mark.parametrize("profile", ["memory"])
def test_an_incoming_traceparent_makes_the_server_span_its_child(
    make_client: MakeClient,
) -> None:
    client = make_client(tracing=TRACING_ON)
    spans = record_spans(client.app.state.runtime.tracing)  # type: ignore[attr-defined]
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    client.get("/api/v1/auth/csrf", headers={"traceparent": f"00-{trace_id}-{parent_id}-01"})
    (server,) = _server_spans(spans)
    assert trace_hex(server)[0] == trace_id
    assert server.parent is not None and format(server.parent.span_id, "016x") == parent_id


@pytest.mark.parametrize("profile", ["embedded"])
def test_sql_statements_are_child_spans_of_the_request(make_client: MakeClient) -> None:
    client = make_client(tracing=TRACING_ON)
    spans = record_spans(client.app.state.runtime.tracing)  # type: ignore[attr-defined]
    browser = Browser(client)
    token = browser.pre_session_token()
    spans.clear()
    registered = browser.post(
        "/api/v1/users",
        json={
            "email": "traced@example.com",
            "username": "traced",
            "password": "Correct-horse-traced-battery",
        },
        headers={"X-CSRF-Token": token},
        csrf=False,
    )
    assert registered.status_code == 201, registered.text

    (server,) = _server_spans(spans)
    assert server.name == "POST /api/v1/users"
    # SQL only: with the edge backend on Redis (`make test-http-edge`) its commands are
    # client spans of the request too.
    sql = [
        s
        for s in children_of(spans.get_finished_spans(), server)
        if s.kind is SpanKind.CLIENT
        and s.instrumentation_scope is not None
        and "sqlalchemy" in s.instrumentation_scope.name
    ]
    statements = [str(s.attributes.get("db.statement", "")) for s in sql]
    assert any(statement.startswith("INSERT INTO users") for statement in statements), statements
    assert all(s.attributes.get("db.system") == "sqlite" for s in sql)
    assert {trace_hex(s)[0] for s in sql} == {trace_hex(server)[0]}


@pytest.mark.parametrize("profile", ["memory"])
def test_the_access_log_line_carries_the_trace_id_of_its_request(
    make_client: MakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    client = make_client(tracing=TRACING_ON)
    spans = record_spans(client.app.state.runtime.tracing)  # type: ignore[attr-defined]
    capsys.readouterr()
    client.get("/api/v1/auth/csrf")
    (server,) = _server_spans(spans)
    (access,) = [r for r in _log_lines(capsys, client) if r["event"] == "http_request"]
    assert (access["trace_id"], access["span_id"]) == trace_hex(server)


@pytest.fixture
def client_with_store_down(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    """Tracing on, the rate-limit store down and not failing open: a request that logs
    a warning of its own (`dependency_unavailable`) before it answers 503."""
    settings = profile_settings(
        "memory", request, tmp_path, tracing=TRACING_ON, rate_limit={"fail_open": False}
    )
    container = build_container(settings)
    container.rate_limiter.override(providers.Object(UnreachableRateLimiter()))
    with TestClient(create_app(settings, container=container)) as client:
        yield client


def test_every_log_line_of_a_request_carries_its_trace_id(
    client_with_store_down: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    client = client_with_store_down
    spans = record_spans(client.app.state.runtime.tracing)  # type: ignore[attr-defined]
    capsys.readouterr()
    answer = client.get("/api/v1/auth/csrf")
    assert answer.status_code == 503
    (server,) = _server_spans(spans)
    assert server.status.status_code is StatusCode.ERROR  # a 5xx fails the server span
    records = _log_lines(capsys, client)
    of_request = [r for r in records if r.get("request_id") == answer.headers["x-request-id"]]
    assert {r["event"] for r in of_request} == {"dependency_unavailable", "http_request"}
    assert {(r["trace_id"], r["span_id"]) for r in of_request} == {trace_hex(server)}


@pytest.mark.parametrize("profile", ["memory"])
def test_with_tracing_off_nothing_is_traced_and_logs_carry_no_trace_id(
    make_client: MakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    client = make_client()
    app: Any = client.app
    assert app.state.runtime.tracing is None
    layers, layer = [], app.middleware_stack
    while layer is not None:
        layers.append(type(layer).__name__)
        layer = getattr(layer, "app", None)
    assert "HttpTracing" not in layers and "RequestContextMiddleware" in layers
    capsys.readouterr()
    client.get("/api/v1/auth/csrf")
    (access,) = [r for r in _log_lines(capsys, client) if r["event"] == "http_request"]
    assert "trace_id" not in access and "span_id" not in access
