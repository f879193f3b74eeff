"""The HTTP protocol surface: routing, headers, docs, OpenAPI, system routes, failures and
logs. (Request bodies: `test_request_bodies.py`.)"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from core.identity.service import AccountService, AuthenticationService
from core.shared.errors import UnavailableError
from entrypoints.http.access_log import FLUSH_INTERVAL_SECONDS, AccessLog
from entrypoints.http.app import PorticoStarlette
from tests.unit.http.conftest import MakeClient
from tests.unit.http.profiles import EDGE_BACKEND
from tests.unit.http.support import Browser, new_credentials

# --- routing ----------------------------------------------------------------------------


def test_unknown_route_is_a_404_problem(client: TestClient) -> None:
    for path in ("/nope", "/api/v1/nope", "/api/v1/users/me/", "/api/v2/users/me"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "not_found"


def test_wrong_method_is_a_405_problem_with_allow(client: TestClient) -> None:
    response = client.put("/api/v1/users/me", json={})
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert response.headers["allow"] == "DELETE, GET, HEAD, PATCH"
    response = client.delete("/health")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert client.get("/api/v1/users").status_code == 405


# --- headers ------------------------------------------------------------------------------


def test_request_id_is_echoed_when_valid_and_made_otherwise(client: TestClient) -> None:
    assert (
        client.get("/health", headers={"X-Request-ID": "abc-123.x_y:z"}).headers["x-request-id"]
        == "abc-123.x_y:z"
    )
    for bad in ("has spaces", "x" * 65, "<script>", ""):
        made = client.get("/health", headers={"X-Request-ID": bad}).headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", made), bad
    first = client.get("/health").headers["x-request-id"]
    assert first != client.get("/health").headers["x-request-id"]


def test_security_headers_on_api_answers(browser: Browser) -> None:
    for response in (browser.me(), browser.get("/api/v1/auth/csrf")):
        headers = response.headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["cache-control"] == "no-store"
        assert headers["content-security-policy"].startswith("default-src 'none'")
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "strict-transport-security" not in headers


def test_hsts_when_cookies_are_secure(make_client: MakeClient) -> None:
    client = make_client(base_url="https://testserver", sessions={"cookie_secure": True})
    assert client.get("/health").headers["strict-transport-security"].startswith("max-age=")


def test_docs_are_offline_with_a_csp_that_fits_them(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "unpkg.com" not in html and "cdn.jsdelivr" not in html  # nothing from elsewhere
    csp = response.headers["content-security-policy"]
    script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
    assert script_src.split() == ["script-src", "'self'"]
    # No inline script (the CSP would refuse it); every script is one the app serves.
    assert not re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    sources = re.findall(r'<script src="([^"]+)"', html)
    styles = re.findall(r'<link rel="stylesheet" href="([^"]+)"', html)
    assert len(sources) == 3 and len(styles) == 1
    for url in sources:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["content-type"].startswith("text/javascript")
    assert "/openapi.json" in client.get(sources[-1]).text  # the page's own setup
    assert "SwaggerUIBundle" in client.get(sources[0]).text
    sheet = client.get(styles[0])
    assert sheet.status_code == 200 and sheet.headers["content-type"].startswith("text/css")
    assert client.get("/docs/assets/not-there.js").status_code == 404
    assert "x-frame-options" in response.headers


def test_spectree_builds_no_inline_pages() -> None:
    # The docs assets are read from disk when asked for: never held in memory.
    import sys

    assert sys.modules.get("offapi", None) is None


def test_docs_can_be_turned_off(make_client: MakeClient) -> None:
    client = make_client(http={"docs_enabled": False})
    assert client.get("/docs").status_code == 404
    assert client.get("/openapi.json").status_code == 200


# --- OpenAPI -----------------------------------------------------------------------------

EXPECTED_OPERATIONS = {
    ("get", "/health"): {"200"},
    ("get", "/ready"): {"200", "503"},
    ("get", "/metrics"): {"200"},
    ("get", "/api/v1/auth/csrf"): {"200", "503"},
    ("post", "/api/v1/users"): {"201", "400", "403", "409", "413", "415", "422", "503"},
    ("post", "/api/v1/auth/login"): {"200", "400", "401", "403", "413", "415", "422", "503"},
    ("post", "/api/v1/auth/logout"): {"204", "401", "403", "503"},
    ("post", "/api/v1/auth/token"): {"200", "400", "401", "413", "415", "422", "503"},
    ("post", "/api/v1/auth/token/refresh"): {"200", "400", "401", "413", "415", "422", "503"},
    ("post", "/api/v1/auth/token/revoke"): {"204", "400", "413", "415", "422", "503"},
    ("post", "/api/v1/auth/logout-all"): {"204", "400", "401", "403", "413", "415", "422", "503"},
    ("get", "/api/v1/auth/sessions"): {"200", "401", "503"},
    ("get", "/api/v1/auth/session"): {"200", "401", "404", "503"},
    ("get", "/api/v1/auth/oauth/{provider}/authorize"): {"302", "404", "503"},
    ("get", "/api/v1/auth/oauth/{provider}/callback"): {"302", "400", "404", "409", "422", "503"},
    ("delete", "/api/v1/auth/sessions/{session_id}"): {"204", "401", "403", "404", "503"},
    ("get", "/api/v1/users/me"): {"200", "401", "503"},
    ("get", "/api/v1/notifications/preferences"): {"200", "401", "503"},
    ("get", "/api/v1/tiers"): {"200", "429", "503"},
    ("get", "/api/v1/me/entitlements"): {"200", "401", "503"},
    ("get", "/api/v1/credits"): {"200", "401", "422", "503"},
    ("post", "/api/v1/billing/checkout"): {
        "200",
        "400",
        "401",
        "403",
        "404",
        "409",
        "413",
        "415",
        "422",
        "429",
        "503",
    },
    ("post", "/api/v1/billing/portal"): {"200", "401", "403", "429", "503"},
    ("get", "/api/v1/billing/subscription"): {"200", "401", "429", "503"},
    ("post", "/api/v1/billing/subscription/cancel"): {
        "200",
        "400",
        "401",
        "403",
        "404",
        "413",
        "415",
        "422",
        "429",
        "503",
    },
    ("post", "/api/v1/billing/subscription/resume"): {"200", "401", "403", "404", "429", "503"},
    ("get", "/api/v1/billing/payments"): {"200", "401", "422", "429", "503"},
    ("post", "/api/v1/webhooks/stripe"): {"200", "400", "403", "413", "503"},
    ("post", "/api/v1/conversations"): {"201", "400", "401", "403", "413", "415", "422", "503"},
    ("get", "/api/v1/conversations"): {"200", "401", "422", "503"},
    ("get", "/api/v1/conversations/{conversation_id}"): {"200", "401", "404", "503"},
    ("patch", "/api/v1/conversations/{conversation_id}"): {"200", "401", "404", "422", "503"},
    ("delete", "/api/v1/conversations/{conversation_id}"): {"204", "401", "404", "503"},
    ("get", "/api/v1/conversations/{conversation_id}/messages"): {"200", "401", "404", "503"},
    ("post", "/api/v1/conversations/{conversation_id}/messages"): {
        "201",
        "401",
        "402",
        "403",
        "404",
        "409",
        "422",
        "429",
        "503",
    },
    ("get", "/api/v1/usage"): {"200", "401", "422", "503"},
    ("put", "/api/v1/notifications/preferences"): {
        "200",
        "400",
        "401",
        "403",
        "413",
        "415",
        "422",
        "503",
    },
    ("patch", "/api/v1/users/me"): {"200", "400", "401", "403", "409", "413", "415", "422", "503"},
    ("delete", "/api/v1/users/me"): {"204", "400", "401", "403", "413", "415", "422", "503"},
    ("post", "/api/v1/auth/password/change"): {
        "204",
        "400",
        "401",
        "403",
        "413",
        "415",
        "422",
        "503",
    },
    ("post", "/api/v1/auth/password/reset-request"): {
        "202",
        "400",
        "403",
        "413",
        "415",
        "422",
        "503",
    },
    ("post", "/api/v1/auth/password/reset-confirm"): {
        "204",
        "400",
        "403",
        "413",
        "415",
        "422",
        "503",
    },
    ("post", "/api/v1/auth/email/verify-request"): {"202", "401", "403", "503"},
    ("post", "/api/v1/auth/email/verify-confirm"): {
        "204",
        "400",
        "403",
        "413",
        "415",
        "422",
        "503",
    },
}


def test_openapi_document_lists_every_route_with_its_statuses(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    operations = {
        (method, path): operation
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }
    assert set(operations) == set(EXPECTED_OPERATIONS)
    for key, statuses in EXPECTED_OPERATIONS.items():
        assert set(operations[key]["responses"]) >= statuses, key
        for status, answer in operations[key]["responses"].items():
            if int(status) >= 400 and key != ("get", "/ready"):
                schema = answer["content"]["application/problem+json"]["schema"]
                assert schema["$ref"].endswith("/Problem"), (key, status)
            if status == "503":
                assert "Retry-After" in answer.get("headers", {}), key
    # every app route (but the document, the docs page with its files, and the fake
    # payment gateway's pages, which are the gateway's and not the API) is in it
    served = {
        (method.lower(), re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path))
        for route in client.app.routes  # type: ignore[attr-defined]
        if isinstance(route, Route)
        and route.path not in ("/openapi.json", "/docs", "/docs/assets/{name}")
        and not route.path.startswith("/fake-gateway/")
        for method in route.methods or ()
        if method != "HEAD"
    }
    assert served == set(EXPECTED_OPERATIONS)


def test_openapi_security_and_schemas(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["sessionCookie"] == {
        "type": "apiKey",
        "in": "cookie",
        "name": "portico_session",
        "description": schemes["sessionCookie"]["description"],
    }
    assert schemes["csrfToken"]["in"] == "header" and schemes["csrfToken"]["name"] == "X-CSRF-Token"
    paths = document["paths"]
    assert schemes["bearerToken"]["type"] == "http"
    assert schemes["bearerToken"]["scheme"] == "bearer"
    assert paths["/api/v1/users/me"]["get"]["security"] == [
        {"sessionCookie": []},
        {"bearerToken": []},
    ]
    assert paths["/api/v1/users/me"]["patch"]["security"] == [
        {"sessionCookie": [], "csrfToken": []},
        {"bearerToken": []},
    ]
    assert paths["/api/v1/auth/token"]["post"]["security"] == []
    assert paths["/health"]["get"]["security"] == []
    schemas = document["components"]["schemas"]
    assert set(schemas["UserRead"]["properties"]) == {
        "id",
        "email",
        "username",
        "tier",
        "email_verified",
        "created_at",
    }
    assert schemas["UserUpdate"]["additionalProperties"] is False
    assert "password_hash" not in str(document)
    logout_all = paths["/api/v1/auth/logout-all"]["post"]["requestBody"]
    assert logout_all["required"] is False
    assert paths["/api/v1/auth/login"]["post"]["requestBody"]["required"] is True


# --- system routes ------------------------------------------------------------------------


def test_health(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_lists_each_dependency(client: TestClient, profile: str) -> None:
    response = client.get("/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    expected = {"sessions"} if profile == "memory" else {"sessions", "database"}
    if EDGE_BACKEND != "memory":
        expected |= {"cache", "rate_limit"}
    assert set(body["checks"]) == expected
    assert set(body["checks"].values()) == {"ok"}


def test_ready_is_503_with_retry_after_when_a_dependency_is_down(client: TestClient) -> None:
    async def down() -> None:
        raise UnavailableError("cache is down", dependency="cache")

    client.app.state.runtime.probes["cache"] = down  # type: ignore[attr-defined]
    response = client.get("/ready")
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["cache"] == "cache is down"
    assert body["checks"]["sessions"] == "ok"


def test_metrics_count_requests_by_route_template_and_status(browser: Browser) -> None:
    browser.signup()
    browser.me()
    browser.delete("/api/v1/auth/sessions/999999")
    text = browser.get("/metrics").text
    assert browser.get("/metrics").headers["content-type"].startswith("text/plain")
    assert re.search(
        r'portico_http_requests_total\{method="GET",route="/api/v1/users/me",status="200"\} 1\.0',
        text,
    )
    assert (
        'portico_http_requests_total{method="DELETE",route="/api/v1/auth/sessions/{session_id:int}",'
        'status="404"} 1.0'
    ) in text
    assert 'portico_http_request_duration_seconds_bucket{le="0.005",method="POST",' in text
    assert "/api/v1/auth/sessions/999999" not in text  # templates, never raw paths


def test_each_app_has_its_own_metrics(make_client: MakeClient) -> None:
    first, second = make_client(), make_client()
    for _ in range(3):
        first.get("/health")
    second.get("/health")
    assert 'route="/health",status="200"} 3.0' in first.get("/metrics").text
    assert 'route="/health",status="200"} 1.0' in second.get("/metrics").text


# --- failures -----------------------------------------------------------------------------


def _access_lines(output: str) -> list[dict[str, Any]]:
    """The access log's lines in captured stdout (JSON, one per request)."""
    found = []
    for line in output.splitlines():
        if line.startswith("{") and '"http_request"' in line:
            record = json.loads(line)
            if record.get("event") == "http_request":
                found.append(record)
    return found


def test_unexpected_exception_is_a_bare_500_problem_and_a_safe_log_line(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    async def boom(request: Request) -> None:
        raise RuntimeError("SELECT password_hash FROM users -- secret")

    client.app.router.routes.append(Route("/boom", boom))  # type: ignore[attr-defined]
    with structlog.testing.capture_logs() as logs:
        response = client.get("/boom", headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500
    assert response.json() == {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "An unexpected error occurred.",
        "code": "internal_error",
    }
    assert response.headers["x-request-id"] == "req-500"
    assert "SELECT" not in response.text
    (error,) = [e for e in logs if e["event"] == "unhandled_exception"]
    assert error["error_type"] == "RuntimeError"
    assert error["request_id"] == "req-500"
    assert "SELECT" not in str(logs) and "secret" not in str(logs)
    client.app.state.access_log.flush()  # type: ignore[attr-defined]
    output = capsys.readouterr().out
    (access,) = _access_lines(output)
    assert access["status"] == 500 and access["request_id"] == "req-500"
    assert "SELECT" not in output and "secret" not in output


def test_session_store_down_is_503_not_500(browser: Browser, client: TestClient) -> None:
    browser.signup()

    async def unavailable(token: str, limit: object = None) -> None:
        raise UnavailableError("redis://10.0.0.5:6379 refused", dependency="sessions")

    client.app.state.runtime.get(AuthenticationService).authenticate = unavailable  # type: ignore[attr-defined]
    response = browser.me()
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["code"] == "service_unavailable"
    assert "10.0.0.5" not in response.text  # the adapter's detail stays in the logs


def test_database_down_during_a_route_is_503(browser: Browser, client: TestClient) -> None:
    async def unavailable(*args: object, **kwargs: object) -> None:
        raise UnavailableError("connection refused", dependency="database", retry_after=7)

    client.app.state.runtime.get(AccountService).register = unavailable  # type: ignore[attr-defined]
    response = browser.register(new_credentials())
    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"


# --- logs -----------------------------------------------------------------------------------


def test_access_log_has_the_facts_and_no_secrets(
    browser: Browser, capsys: pytest.CaptureFixture[str]
) -> None:
    credentials = new_credentials()
    assert browser.register(credentials).status_code == 201
    capsys.readouterr()
    browser.login(credentials.email, credentials.password)
    browser.get("/api/v1/auth/sessions", headers={"X-Request-ID": "trace-me"})
    token = browser.session_cookie
    assert token and browser.csrf
    browser.client.app.state.access_log.flush()  # type: ignore[attr-defined]
    text = capsys.readouterr().out
    for secret in (token, browser.csrf, credentials.password):
        assert secret not in text
    access = _access_lines(text)
    assert {e["route"] for e in access} >= {"/api/v1/auth/login", "/api/v1/auth/sessions"}
    sessions_line = next(e for e in access if e["route"] == "/api/v1/auth/sessions")
    assert sessions_line["method"] == "GET"
    assert sessions_line["status"] == 200
    assert sessions_line["request_id"] == "trace-me"
    assert isinstance(sessions_line["duration_ms"], float)
    assert sessions_line["user_id"] is not None


def test_handlers_for_unhandled_exceptions_are_refused() -> None:
    # Unhandled exceptions are RequestContextMiddleware's to answer (a 500 problem).
    async def handler(request: Request, exc: Exception) -> Response:
        raise AssertionError("never called")

    app = PorticoStarlette(routes=[], exception_handlers={Exception: handler})
    with pytest.raises(ValueError, match="RequestContextMiddleware"):
        app.build_middleware_stack()
    assert PorticoStarlette(routes=[]).build_middleware_stack() is not None  # control


async def test_access_lines_are_batched_and_none_is_lost(
    capsys: pytest.CaptureFixture[str],
) -> None:
    log = AccessLog()
    fields = {"method": "GET", "route": "/health", "status": 200, "duration_ms": 0.1}
    log.request(request_id="first", user_id=None, **fields)  # after a quiet spell: at once
    assert [line["request_id"] for line in _access_lines(capsys.readouterr().out)] == ["first"]
    for number in range(3):
        log.request(request_id=f"burst-{number}", user_id=7, **fields)
    assert capsys.readouterr().out == ""  # held for the batch...
    await asyncio.sleep(FLUSH_INTERVAL_SECONDS * 3)  # ...which goes out within the interval
    lines = _access_lines(capsys.readouterr().out)
    assert [line["request_id"] for line in lines] == ["burst-0", "burst-1", "burst-2"]
    assert all(line["user_id"] == 7 and line["timestamp"].endswith("Z") for line in lines)
