"""CSRF by who sends the request: whatever a browser sends (a cookie, `Origin` or
`Sec-Fetch-Site`) is checked on every unsafe route; a JSON client that sends none of
them (a mobile app, a script) signs up and in without any CSRF dance."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from typing import Any

import pytest
from starlette.testclient import TestClient

from core.billing.catalog import CatalogService
from core.billing.credits import CreditService
from core.billing.seed import seed_catalog
from core.conversations.prices import PriceService
from core.notifications.ports import EmailSender
from core.payments.events import PaymentEventService
from core.payments.ports import PaymentGateway
from entrypoints.http.app import all_endpoints
from entrypoints.http.endpoints import Access, Endpoint
from tests.unit.http.conftest import MakeClient
from tests.unit.http.support import Browser, Credentials, new_credentials

EVIL = "https://evil.example"
BROWSER_HEADERS = {"cookie", "origin", "sec-fetch-site"}
ME = "/api/v1/users/me"
SESSIONS = "/api/v1/auth/sessions"
PREFERENCES = "/api/v1/notifications/preferences"
CHECKOUT = "/api/v1/billing/checkout"
SUBSCRIPTION = "/api/v1/billing/subscription"
WEBHOOK = "/api/v1/webhooks/stripe"
CONVERSATIONS = "/api/v1/conversations"
CONVERSATION = "/api/v1/conversations/{conversation_id:int}"
NEW_PASSWORD = "A-brand-new-passphrase-for-csrf-42"
_MAIL_TOKEN = re.compile(r"[?&]token=([A-Za-z0-9_-]+)")

# What a browser says when another site's page makes it post here.
CROSS_SITE = {
    "origin": {"Origin": EVIL},
    "fetch-site": {"Sec-Fetch-Site": "cross-site"},
    "same-site": {"Sec-Fetch-Site": "same-site"},  # a sibling subdomain's page
    "origin+fetch-site": {"Origin": EVIL, "Sec-Fetch-Site": "cross-site"},
}
UNSAFE = [endpoint for endpoint in all_endpoints() if endpoint.unsafe]


def _assert_csrf_failed(response: Any) -> None:
    assert response.status_code == 403, (response.request.url, response.text)
    assert response.json()["code"] == "csrf_failed"


class App:
    """A JSON client without a cookie jar and without browser headers (a mobile app)."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        self.client.cookies = CookieJar()  # type: ignore[assignment]  # remembers nothing
        response = self.client.request(method, path, **kwargs)
        sent = {name.lower() for name in response.request.headers}
        extra = {name.lower() for name in kwargs.get("headers") or {}}
        assert not (sent - extra) & (BROWSER_HEADERS | {"x-csrf-token"}), sent
        return response

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)


# --- every unsafe route refuses a cross-site browser ---------------------------------------


@dataclass
class Scene:
    client: TestClient
    victim: Browser
    credentials: Credentials

    def drain(self) -> None:
        runtime = self.client.app.state.runtime  # type: ignore[attr-defined]
        assert self.client.portal is not None
        self.client.portal.call(runtime.drain_jobs)

    def outbox(self) -> list[Any]:
        runtime = self.client.app.state.runtime  # type: ignore[attr-defined]
        return list(runtime.get(EmailSender).sent_to(self.credentials.email))

    def mail_token(self, subject: str) -> str:
        self.drain()
        tokens = [
            token
            for message in self.outbox()
            if subject in message.subject.lower()
            for token in _MAIL_TOKEN.findall(message.text)
        ]
        assert tokens, f"no {subject} mail"
        return tokens[-1]

    def state(self) -> dict[str, Any]:
        """What a forged request could change, as the victim sees it."""
        self.drain()
        sessions = self.victim.get(SESSIONS)
        return {
            "me": self.victim.me().json(),
            "sessions": sorted(item["id"] for item in sessions.json()["items"]),
            "preferences": self.victim.get(PREFERENCES).json(),
            "mail": len(self.outbox()),
        }


@dataclass(frozen=True)
class Forgeable:
    """A request that succeeds (`expected`) when the victim's own page sends it."""

    path: str
    body: dict[str, Any] | None
    expected: int
    # A body sent byte for byte (a signed webhook), with the headers it needs.
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        return {"content": self.content} if self.content is not None else {"json": self.body}


def _seeded(scene: Scene) -> Any:
    runtime = scene.client.app.state.runtime  # type: ignore[attr-defined]
    assert scene.client.portal is not None
    scene.client.portal.call(lambda: seed_catalog(runtime.get(CatalogService)))
    return runtime


def _paid_checkout(scene: Scene, **what: str) -> list[Any]:
    """The victim buys `what` through the fake gateway: the signed deliveries it made
    (not delivered)."""
    runtime = _seeded(scene)
    started = scene.victim.post(CHECKOUT, json=what)
    assert started.status_code == 200, started.text
    session_id = started.json()["url"].rsplit("/", 1)[-1]
    return list(runtime.get(PaymentGateway).complete_checkout(session_id))


def _subscribed(scene: Scene) -> None:
    runtime = scene.client.app.state.runtime  # type: ignore[attr-defined]
    events = runtime.get(PaymentEventService)
    assert scene.client.portal is not None
    for delivery in _paid_checkout(scene, tier="pro"):
        scene.client.portal.call(lambda d=delivery: events.receive(d.payload, d.signature))


def _webhook(scene: Scene) -> Forgeable:
    delivery = _paid_checkout(scene, credit_pack="small")[-1]
    return Forgeable(WEBHOOK, None, 200, delivery.payload, {"Stripe-Signature": delivery.signature})


def _conversation(scene: Scene) -> int:
    created = scene.victim.post(CONVERSATIONS, json={"title": "Mine"})
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def _message(scene: Scene) -> Forgeable:
    runtime = _seeded(scene)
    user_id = scene.victim.me().json()["id"]
    assert scene.client.portal is not None
    scene.client.portal.call(lambda: runtime.get(PriceService).ensure_default_prices())
    scene.client.portal.call(
        lambda: runtime.get(CreditService).grant(user_id, 1_000, idempotency_key="csrf")
    )
    path = f"{CONVERSATIONS}/{_conversation(scene)}/messages"
    return Forgeable(path, {"content": "Hello"}, 201)


def _cancel(scene: Scene) -> Forgeable:
    _subscribed(scene)
    return Forgeable(f"{SUBSCRIPTION}/cancel", {}, 200)


def _resume(scene: Scene) -> Forgeable:
    _subscribed(scene)
    assert scene.victim.post(f"{SUBSCRIPTION}/cancel", json={}).status_code == 200
    return Forgeable(f"{SUBSCRIPTION}/resume", None, 200)


def _signed_in_elsewhere(scene: Scene) -> Forgeable:
    other = Browser(scene.client)
    other.login_as(scene.credentials)
    ids = {item["id"] for item in other.get(SESSIONS).json()["items"] if item["current"]}
    return Forgeable(f"{SESSIONS}/{ids.pop()}", None, 204)


def _refresh_token(scene: Scene) -> str:
    credentials = {"email": scene.credentials.email, "password": scene.credentials.password}
    issued = App(scene.client).post("/api/v1/auth/token", json=credentials)
    assert issued.status_code == 200, issued.text
    return str(issued.json()["refresh_token"])


def _reset_token(scene: Scene) -> str:
    token = scene.victim.pre_session_token()
    requested = scene.victim.post(
        "/api/v1/auth/password/reset-request",
        json={"email": scene.credentials.email},
        headers={"X-CSRF-Token": token},
        csrf=False,
    )
    assert requested.status_code == 202
    return scene.mail_token("reset")


def _verification_token(scene: Scene) -> str:
    assert scene.victim.post("/api/v1/auth/email/verify-request").status_code == 202
    return scene.mail_token("confirm")


def _login_body(scene: Scene) -> dict[str, Any]:
    return {"email": scene.credentials.email, "password": scene.credentials.password}


# One request per unsafe route that the victim's own page would send successfully. A new
# unsafe route fails the test below until it has its line here.
VALID_REQUESTS: dict[tuple[str, str], Callable[[Scene], Forgeable]] = {
    ("POST", "/api/v1/auth/login"): lambda s: Forgeable("/api/v1/auth/login", _login_body(s), 200),
    ("POST", "/api/v1/auth/logout"): lambda s: Forgeable("/api/v1/auth/logout", None, 204),
    ("POST", "/api/v1/auth/logout-all"): lambda s: Forgeable("/api/v1/auth/logout-all", {}, 204),
    ("DELETE", "/api/v1/auth/sessions/{session_id:int}"): _signed_in_elsewhere,
    ("POST", "/api/v1/auth/password/change"): lambda s: Forgeable(
        "/api/v1/auth/password/change",
        {"current_password": s.credentials.password, "new_password": NEW_PASSWORD},
        204,
    ),
    ("POST", "/api/v1/auth/token"): lambda s: Forgeable("/api/v1/auth/token", _login_body(s), 200),
    ("POST", "/api/v1/auth/token/refresh"): lambda s: Forgeable(
        "/api/v1/auth/token/refresh", {"refresh_token": _refresh_token(s)}, 200
    ),
    ("POST", "/api/v1/auth/token/revoke"): lambda s: Forgeable(
        "/api/v1/auth/token/revoke", {"refresh_token": _refresh_token(s)}, 204
    ),
    ("POST", "/api/v1/auth/password/reset-request"): lambda s: Forgeable(
        "/api/v1/auth/password/reset-request", {"email": s.credentials.email}, 202
    ),
    ("POST", "/api/v1/auth/password/reset-confirm"): lambda s: Forgeable(
        "/api/v1/auth/password/reset-confirm",
        {"token": _reset_token(s), "new_password": NEW_PASSWORD},
        204,
    ),
    ("POST", "/api/v1/auth/email/verify-request"): lambda s: Forgeable(
        "/api/v1/auth/email/verify-request", None, 202
    ),
    ("POST", "/api/v1/auth/email/verify-confirm"): lambda s: Forgeable(
        "/api/v1/auth/email/verify-confirm", {"token": _verification_token(s)}, 204
    ),
    ("POST", "/api/v1/users"): lambda s: Forgeable(
        "/api/v1/users", new_credentials().as_json(), 201
    ),
    ("PATCH", ME): lambda s: Forgeable(ME, {"username": new_credentials().username}, 200),
    ("DELETE", ME): lambda s: Forgeable(ME, {"password": s.credentials.password}, 204),
    ("PUT", PREFERENCES): lambda s: Forgeable(PREFERENCES, {"marketing": True}, 200),
    ("POST", CHECKOUT): lambda s: _seeded(s) and Forgeable(CHECKOUT, {"credit_pack": "small"}, 200),
    ("POST", "/api/v1/billing/portal"): lambda s: Forgeable("/api/v1/billing/portal", None, 200),
    ("POST", f"{SUBSCRIPTION}/cancel"): _cancel,
    ("POST", f"{SUBSCRIPTION}/resume"): _resume,
    ("POST", WEBHOOK): _webhook,
    ("POST", CONVERSATIONS): lambda s: Forgeable(CONVERSATIONS, {"title": "Plans"}, 201),
    ("PATCH", CONVERSATION): lambda s: Forgeable(
        f"{CONVERSATIONS}/{_conversation(s)}", {"title": "Renamed"}, 200
    ),
    ("DELETE", CONVERSATION): lambda s: Forgeable(f"{CONVERSATIONS}/{_conversation(s)}", None, 204),
    ("POST", f"{CONVERSATION}/messages"): _message,
}


def _forgers(scene: Scene, pre_session_token: str) -> list[tuple[str, Browser, str | None]]:
    """Who posts: a browser without cookies, and the victim's browser (session and
    pre-session cookies) without a token and with each of its real tokens (which another
    site's page could not read, but the origin alone must refuse it)."""
    return [
        ("no cookie", Browser(scene.client), None),
        ("cookies, no token", scene.victim, None),
        ("cookies, session token", scene.victim, scene.victim.csrf),
        ("cookies, pre-session token", scene.victim, pre_session_token),
    ]


@pytest.mark.parametrize("endpoint", UNSAFE, ids=lambda e: f"{e.method} {e.path}")
def test_a_cross_site_browser_request_is_refused_on_every_unsafe_route(
    make_client: MakeClient, endpoint: Endpoint
) -> None:
    prepare = VALID_REQUESTS.get((endpoint.method, endpoint.path))
    assert prepare is not None, f"add a valid {endpoint.method} {endpoint.path} to VALID_REQUESTS"
    client = make_client()
    victim = Browser(client)
    scene = Scene(client, victim, victim.signup())
    forgeable = prepare(scene)
    pre_session_token = victim.pre_session_token()
    before = scene.state()

    for site, headers in CROSS_SITE.items():
        for who, sender, token in _forgers(scene, pre_session_token):
            sent = dict(forgeable.headers, **headers)
            sent.update({"X-CSRF-Token": token} if token else {})
            response = sender.request(
                endpoint.method, forgeable.path, headers=sent, csrf=False, **forgeable.payload()
            )
            assert response.status_code == 403, (site, who, response.text)
            assert response.json()["code"] == "csrf_failed"
            assert "set-cookie" not in response.headers
    assert scene.state() == before

    # Control: the victim's own page sends the same request and it does what it says
    # (a spent reset or refresh token, a taken email or a sent mail would fail it).
    own_token = {"X-CSRF-Token": pre_session_token} if endpoint.access is Access.PRE_SESSION else {}
    response = victim.request(
        endpoint.method,
        forgeable.path,
        headers={**forgeable.headers, **own_token},
        **forgeable.payload(),
    )
    assert response.status_code == forgeable.expected, response.text


def test_every_unsafe_route_has_a_valid_request() -> None:
    declared = {(endpoint.method, endpoint.path) for endpoint in UNSAFE}
    assert declared == set(VALID_REQUESTS)
    assert len(declared) >= 15  # the enumeration itself works


# --- apps need no CSRF dance ----------------------------------------------------------------


def test_an_app_registers_logs_in_and_gets_a_token_without_csrf(client: TestClient) -> None:
    app = App(client)
    credentials = new_credentials()
    login = {"email": credentials.email, "password": credentials.password}

    registered = app.post("/api/v1/users", json=credentials.as_json())
    assert registered.status_code == 201, registered.text
    assert registered.json()["email"] == credentials.email

    signed_in = app.post("/api/v1/auth/login", json=login)
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["user"]["id"] == registered.json()["id"]

    issued = app.post("/api/v1/auth/token", json=login)
    assert issued.status_code == 200, issued.text
    bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}
    me = app.request("GET", ME, headers=bearer)
    assert me.status_code == 200 and me.json()["id"] == registered.json()["id"]


def test_the_same_registration_with_another_sites_origin_is_refused(client: TestClient) -> None:
    app = App(client)
    credentials = new_credentials()
    login = {"email": credentials.email, "password": credentials.password}
    hostile = {"Origin": EVIL}

    _assert_csrf_failed(app.post("/api/v1/users", json=credentials.as_json(), headers=hostile))
    # Control: without the Origin the very same request registers (nothing was created).
    assert app.post("/api/v1/users", json=credentials.as_json()).status_code == 201
    for path in ("/api/v1/auth/login", "/api/v1/auth/token"):
        refused = app.post(path, json=login, headers=hostile)
        _assert_csrf_failed(refused)
        assert "set-cookie" not in refused.headers
        assert app.post(path, json=login).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "same-origin"},  # the API's own page (fetch)
        {"Sec-Fetch-Site": "none"},  # typed by the user: no page, still a browser
        {"Origin": "http://testserver"},  # same origin, no fetch metadata
        {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"},
        {"Cookie": "theme=dark"},  # any cookie: a browser (or a client with a jar)
    ],
    ids=["fetch-same-origin", "fetch-none", "own-origin", "own-origin+fetch", "other-cookie"],
)
def test_a_browser_without_cookies_still_needs_the_pre_session_token(
    client: TestClient, headers: dict[str, str]
) -> None:
    """What a browser sends needs the token even from its own origin (the middleware's
    module doc says why); with the token it registers."""
    app = App(client)
    credentials = new_credentials()
    _assert_csrf_failed(app.post("/api/v1/users", json=credentials.as_json(), headers=headers))
    # Control: the same headers with a pre-session token and its cookie are accepted.
    token = app.request("GET", "/api/v1/auth/csrf").json()["csrf_token"]
    cookie = f"portico_csrf={token}"
    if "Cookie" in headers:
        cookie = f"{headers['Cookie']}; {cookie}"
    with_token = dict(headers, **{"X-CSRF-Token": token, "Cookie": cookie})
    accepted = app.post("/api/v1/users", json=credentials.as_json(), headers=with_token)
    assert accepted.status_code == 201, accepted.text


def test_an_app_that_keeps_the_session_cookie_needs_the_session_token(
    client: TestClient,
) -> None:
    """A session cookie is ambient authority wherever it comes from: token required."""
    app = App(client)
    credentials = new_credentials()
    assert app.post("/api/v1/users", json=credentials.as_json()).status_code == 201
    signed_in = app.post(
        "/api/v1/auth/login", json={"email": credentials.email, "password": credentials.password}
    )
    cookie = {"Cookie": signed_in.headers["set-cookie"].split(";", 1)[0]}
    rename = {"username": new_credentials().username}
    _assert_csrf_failed(app.request("PATCH", ME, json=rename, headers=cookie))
    assert app.request("GET", ME, headers=cookie).json()["username"] == credentials.username
    # Control: with the session's token from the login answer the rename goes through.
    with_token = dict(cookie, **{"X-CSRF-Token": signed_in.json()["csrf_token"]})
    renamed = app.request("PATCH", ME, json=rename, headers=with_token)
    assert renamed.status_code == 200 and renamed.json()["username"] == rename["username"]


def test_a_trusted_front_end_on_another_site_passes_the_origin_check(
    make_client: MakeClient,
) -> None:
    client = make_client(http={"trusted_origins": ["https://app.example.com"]})
    front_end = Browser(client)
    front_end.signup()
    for fetch_site in ("same-site", "cross-site"):
        rename = {"username": new_credentials().username}
        refused = front_end.patch(
            ME,
            json=rename,
            headers={"Origin": "https://other.example.com", "Sec-Fetch-Site": fetch_site},
        )
        _assert_csrf_failed(refused)
        accepted = front_end.patch(
            ME,
            json=rename,
            headers={"Origin": "https://app.example.com", "Sec-Fetch-Site": fetch_site},
        )
        assert accepted.status_code == 200, accepted.text
