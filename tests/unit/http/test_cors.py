"""CORS for front ends on other origins (`PORTICO_HTTP__CORS_ORIGINS`)."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from entrypoints.http.middleware.cors import ListedOriginsCors
from tests.unit.http.conftest import MakeClient
from tests.unit.http.support import Browser, new_credentials

# One profile is enough: CORS answers before anything that depends on the stores.
pytestmark = pytest.mark.parametrize("profile", ["memory"])

FRONT_END = "https://app.example.com"
ELSEWHERE = "https://evil.example.net"


def _cors_headers(response: object) -> dict[str, str]:
    headers = response.headers  # type: ignore[attr-defined]
    return {k.lower(): v for k, v in headers.items() if k.lower().startswith("access-control-")}


def _preflight(client: TestClient, origin: str, method: str = "POST") -> object:
    return client.options(
        "/api/v1/auth/logout",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "content-type, x-csrf-token",
        },
    )


@pytest.fixture
def cors_client(make_client: MakeClient) -> TestClient:
    # Listed as a user would write it: case and a trailing slash do not matter.
    return make_client(http={"cors_origins": ["HTTPS://App.example.com/"]})


def test_a_preflight_from_a_listed_origin_is_answered_with_its_headers(
    cors_client: TestClient,
) -> None:
    response = _preflight(cors_client, FRONT_END)
    assert response.status_code == 200  # type: ignore[attr-defined]
    headers = _cors_headers(response)
    assert headers["access-control-allow-origin"] == FRONT_END
    assert headers["access-control-allow-credentials"] == "true"
    assert "POST" in headers["access-control-allow-methods"]
    allowed = {h.strip().lower() for h in headers["access-control-allow-headers"].split(",")}
    assert {"x-csrf-token", "content-type", "authorization"} <= allowed
    assert int(headers["access-control-max-age"]) > 0
    # Inside the request context: it has a request id like every answer.
    assert response.headers["x-request-id"]  # type: ignore[attr-defined]


def test_a_preflight_from_an_unlisted_origin_gets_no_cors_header(
    cors_client: TestClient,
) -> None:
    response = _preflight(cors_client, ELSEWHERE)
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert _cors_headers(response) == {}
    assert "Origin" in response.headers["vary"]  # type: ignore[attr-defined]


def test_answers_expose_headers_and_credentials_to_listed_origins_only(
    cors_client: TestClient,
) -> None:
    listed = cors_client.get("/api/v1/users/me", headers={"Origin": FRONT_END})
    assert listed.status_code == 401  # errors are readable by the front end too
    headers = _cors_headers(listed)
    assert headers["access-control-allow-origin"] == FRONT_END
    assert headers["access-control-allow-credentials"] == "true"
    exposed = {h.strip().lower() for h in headers["access-control-expose-headers"].split(",")}
    assert {"x-request-id", "ratelimit-remaining", "retry-after"} <= exposed
    assert "Origin" in listed.headers["vary"]

    unlisted = cors_client.get("/api/v1/users/me", headers={"Origin": ELSEWHERE})
    assert unlisted.status_code == 401
    assert _cors_headers(unlisted) == {}
    assert "Origin" in unlisted.headers["vary"]


def test_preflights_pass_the_rate_limit_authentication_and_csrf(make_client: MakeClient) -> None:
    client = make_client(
        http={"cors_origins": [FRONT_END]},
        rate_limit={"anonymous": 1, "window_seconds": 3600},
    )
    # A session cookie that does not exist would be a 401 on an ordinary request.
    client.cookies.set(client.app.state.settings.session_cookie_name, "no-such-session")  # type: ignore[attr-defined]
    for _ in range(3):
        assert _preflight(client, FRONT_END).status_code == 200  # type: ignore[attr-defined]
    client.cookies.clear()
    assert client.get("/api/v1/tiers").status_code == 200
    assert client.get("/api/v1/tiers").status_code == 429  # the limit itself is on


def test_a_listed_origin_may_sign_in_with_the_csrf_token_an_unlisted_one_may_not(
    cors_client: TestClient,
) -> None:
    browser = Browser(cors_client)
    token = browser.pre_session_token()
    refused = browser.post(
        "/api/v1/users",
        json=new_credentials().as_json(),
        headers={"Origin": ELSEWHERE, "X-CSRF-Token": token},
        csrf=False,
    )
    assert refused.status_code == 403 and refused.json()["code"] == "csrf_failed"
    accepted = browser.post(
        "/api/v1/users",
        json=new_credentials().as_json(),
        headers={"Origin": FRONT_END, "X-CSRF-Token": token},
        csrf=False,
    )
    assert accepted.status_code == 201, accepted.text
    assert accepted.headers["access-control-allow-origin"] == FRONT_END
    # The origin alone is not enough: the token is still required.
    tokenless = browser.post(
        "/api/v1/users",
        json=new_credentials().as_json(),
        headers={"Origin": FRONT_END},
        csrf=False,
    )
    assert tokenless.status_code == 403


def test_a_wildcard_never_comes_with_credentials(make_client: MakeClient) -> None:
    client = make_client(http={"cors_origins": ["*"]})
    response = _preflight(client, ELSEWHERE)
    assert response.status_code == 200  # type: ignore[attr-defined]
    headers = _cors_headers(response)
    assert headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in headers
    simple = client.get("/health", headers={"Origin": ELSEWHERE})
    assert simple.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in simple.headers
    # Nor does a wildcard make every origin trusted by the CSRF check.
    browser = Browser(client)
    token = browser.pre_session_token()
    refused = browser.post(
        "/api/v1/users",
        json=new_credentials().as_json(),
        headers={"Origin": ELSEWHERE, "X-CSRF-Token": token},
        csrf=False,
    )
    assert refused.status_code == 403


def test_without_origins_there_is_no_cors_layer(client: TestClient) -> None:
    layers = [m.cls for m in client.app.user_middleware]  # type: ignore[attr-defined]
    assert ListedOriginsCors not in layers
    response = _preflight(client, FRONT_END)
    assert _cors_headers(response) == {}
    simple = client.get("/health", headers={"Origin": FRONT_END})
    assert _cors_headers(simple) == {}


def test_cors_origins_must_be_origins(make_client: MakeClient) -> None:
    from pydantic import ValidationError

    for bad in ("app.example.com", "https://app.example.com/path", "null"):
        with pytest.raises(ValidationError, match="not an origin"):
            make_client(http={"cors_origins": [bad]})
