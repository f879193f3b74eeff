"""Password reset and email verification end to end through HTTP, with the mail read
from the in-memory sender after the job runner drained, on every profile. Time moves
through the runtime's clock (a manual clock put into the container)."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers
from starlette.testclient import TestClient

from adapters.memory.clock import ManualClock
from adapters.memory.email import InMemoryEmailSender
from core.audit.model import AuditEntry
from core.shared.query import ListQuery, PageRequest, parse_filters
from entrypoints.bootstrap.container import Container, build_container
from entrypoints.bootstrap.runtime import Runtime
from entrypoints.http.app import create_app
from tests.unit.http.profiles import profile_settings
from tests.unit.http.support import Browser, Credentials, ResponseChecker, new_credentials

RESET_REQUEST = "/api/v1/auth/password/reset-request"
RESET_CONFIRM = "/api/v1/auth/password/reset-confirm"
VERIFY_REQUEST = "/api/v1/auth/email/verify-request"
VERIFY_CONFIRM = "/api/v1/auth/email/verify-confirm"
SESSIONS = "/api/v1/auth/sessions"
FRONTEND = "https://app.example.com"
USER_AGENT = "PorticoTests/1.0 (recovery)"
NEW_PASSWORD = "A-fresh-passphrase-for-reset-42"
_TOKEN = re.compile(r"[?&]token=([A-Za-z0-9_-]+)")


@dataclass
class Harness:
    client: TestClient
    container: Container
    clock: ManualClock
    sender: InMemoryEmailSender

    @property
    def runtime(self) -> Runtime:
        return self.client.app.state.runtime  # type: ignore[attr-defined,no-any-return]

    def browser(self) -> Browser:
        return Browser(self.client)

    def drain(self) -> None:
        """Run every due job on the app's event loop (the TestClient's portal)."""
        assert self.client.portal is not None
        self.client.portal.call(self.runtime.drain_jobs)

    def mail_tokens(self, to: str, subject: str) -> list[str]:
        found = []
        for message in self.sender.sent_to(to):
            if subject.lower() in message.subject.lower():
                found.extend(_TOKEN.findall(message.text))
        return found

    def audit(self, **filters: object) -> list[AuditEntry]:
        async def read() -> list[AuditEntry]:
            factory: Any = self.container.unit_of_work()
            if inspect.isawaitable(factory):
                factory = await factory
            async with factory(read_only=True) as tx:
                page = await tx.audit.list(
                    ListQuery(conditions=parse_filters(filters), page=PageRequest(limit=100))
                )
            return list(page.items)

        assert self.client.portal is not None
        return self.client.portal.call(read)


@pytest.fixture
def harness(profile: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    settings = profile_settings(
        profile,
        request,
        tmp_path,
        email={"backend": "memory"},
        accounts={"frontend_url": FRONTEND},
    )
    clock = ManualClock(datetime.now(UTC))
    container = build_container(settings)
    container.clock.override(providers.Object(clock))
    app = create_app(settings, container=container)
    with TestClient(app, headers={"User-Agent": USER_AGENT}) as client:
        client.event_hooks = {"request": [], "response": [ResponseChecker(app)]}
        sender = container.email_sender()
        assert isinstance(sender, InMemoryEmailSender)
        yield Harness(client, container, clock, sender)


def anonymous_post(browser: Browser, path: str, body: dict[str, Any]) -> Any:
    """A form post without a session: the pre-session CSRF token, as for login."""
    token = browser.pre_session_token()
    return browser.post(path, json=body, headers={"X-CSRF-Token": token}, csrf=False)


def signed_up(harness: Harness) -> tuple[Browser, Credentials]:
    browser = harness.browser()
    credentials = browser.signup(new_credentials())
    harness.drain()  # the welcome mail
    return browser, credentials


def request_reset(harness: Harness, email: str) -> str:
    response = anonymous_post(harness.browser(), RESET_REQUEST, {"email": email})
    assert response.status_code == 202 and response.content == b""
    harness.drain()
    tokens = harness.mail_tokens(email, "Reset")
    assert tokens, "no reset mail"
    return tokens[-1]


def request_verification(harness: Harness, browser: Browser, email: str) -> str:
    response = browser.post(VERIFY_REQUEST)
    assert response.status_code == 202 and response.content == b""
    harness.drain()
    return harness.mail_tokens(email, "Confirm")[-1]


# --- email verification ------------------------------------------------------------------


def test_email_verification_round_trip(harness: Harness) -> None:
    browser, credentials = signed_up(harness)
    assert browser.me().json()["email_verified"] is False
    token = request_verification(harness, browser, credentials.email)
    (mail,) = harness.sender.sent_to(credentials.email)[-1:]
    assert f"{FRONTEND}/verify-email?token={token}" in mail.text

    confirmed = browser.post(VERIFY_CONFIRM, json={"token": token})
    assert confirmed.status_code == 204 and confirmed.content == b""
    assert browser.me().json()["email_verified"] is True

    reused = browser.post(VERIFY_CONFIRM, json={"token": token})
    assert reused.status_code == 422
    assert reused.json()["code"] == "invalid_token"
    assert reused.json()["errors"][0]["loc"] == ["body", "token"]


def test_verify_confirm_needs_no_session_but_a_csrf_token(harness: Harness) -> None:
    browser, credentials = signed_up(harness)
    token = request_verification(harness, browser, credentials.email)
    stranger = harness.browser()  # another device, not signed in

    forged = stranger.post(VERIFY_CONFIRM, json={"token": token}, csrf=False)
    assert forged.status_code == 403 and forged.json()["code"] == "csrf_failed"
    assert anonymous_post(stranger, VERIFY_CONFIRM, {"token": token}).status_code == 204
    assert browser.me().json()["email_verified"] is True


def test_verify_request_needs_a_session(harness: Harness) -> None:
    anonymous = harness.browser()
    response = anonymous.post(VERIFY_REQUEST)
    assert response.status_code == 401
    harness.drain()
    assert harness.sender.outbox == []


def test_an_expired_verification_token_is_refused(harness: Harness) -> None:
    browser, credentials = signed_up(harness)
    token = request_verification(harness, browser, credentials.email)
    harness.clock.advance(24 * 3600)  # the session is long gone too: post anonymously
    response = anonymous_post(harness.browser(), VERIFY_CONFIRM, {"token": token})
    assert response.status_code == 422 and response.json()["code"] == "invalid_token"


# --- password reset ----------------------------------------------------------------------


def test_password_reset_round_trip_ends_every_session(harness: Harness) -> None:
    first, credentials = signed_up(harness)
    second = harness.browser()
    second.login_as(credentials)
    token = request_reset(harness, credentials.email)

    stranger = harness.browser()
    done = anonymous_post(stranger, RESET_CONFIRM, {"token": token, "new_password": NEW_PASSWORD})
    assert done.status_code == 204 and done.content == b""

    assert first.me().status_code == 401
    assert second.me().status_code == 401
    assert stranger.login(credentials.email, credentials.password).status_code == 401
    assert stranger.login(credentials.email, NEW_PASSWORD).status_code == 200
    reused = anonymous_post(
        harness.browser(), RESET_CONFIRM, {"token": token, "new_password": "Another-one-entirely-7"}
    )
    assert reused.status_code == 422 and reused.json()["code"] == "invalid_token"
    harness.drain()
    assert harness.mail_tokens(credentials.email, "changed") == []  # no link in that one
    assert any("changed" in m.subject for m in harness.sender.sent_to(credentials.email))


def test_reset_confirm_from_a_signed_in_browser_clears_its_cookie(harness: Harness) -> None:
    browser, credentials = signed_up(harness)
    token = request_reset(harness, credentials.email)
    response = browser.post(RESET_CONFIRM, json={"token": token, "new_password": NEW_PASSWORD})
    assert response.status_code == 204
    assert "Max-Age=0" in response.headers["set-cookie"]
    assert browser.me().status_code == 401


def test_reset_request_for_an_unknown_address_is_202_and_sends_nothing(harness: Harness) -> None:
    signed_up(harness)
    harness.sender.clear()
    browser = harness.browser()
    for email in ("nobody@example.com", "not an email at all"):
        response = anonymous_post(browser, RESET_REQUEST, {"email": email})
        assert response.status_code == 202 and response.content == b""
    harness.drain()
    assert harness.sender.outbox == []


def test_reset_request_needs_the_pre_session_csrf_token(harness: Harness) -> None:
    _, credentials = signed_up(harness)
    harness.sender.clear()
    response = harness.browser().post(RESET_REQUEST, json={"email": credentials.email})
    assert response.status_code == 403 and response.json()["code"] == "csrf_failed"
    harness.drain()
    assert harness.sender.outbox == []


def test_a_weak_new_password_is_refused_and_the_token_kept(harness: Harness) -> None:
    _, credentials = signed_up(harness)
    token = request_reset(harness, credentials.email)
    browser = harness.browser()
    weak = anonymous_post(browser, RESET_CONFIRM, {"token": token, "new_password": "short"})
    assert weak.status_code == 422 and weak.json()["code"] == "weak_password"
    assert weak.json()["errors"][0]["loc"] == ["body", "new_password"]
    ok = anonymous_post(browser, RESET_CONFIRM, {"token": token, "new_password": NEW_PASSWORD})
    assert ok.status_code == 204


def test_an_expired_reset_token_is_refused(harness: Harness) -> None:
    _, credentials = signed_up(harness)
    token = request_reset(harness, credentials.email)
    harness.clock.advance(30 * 60)
    response = anonymous_post(
        harness.browser(), RESET_CONFIRM, {"token": token, "new_password": NEW_PASSWORD}
    )
    assert response.status_code == 422 and response.json()["code"] == "invalid_token"
    assert harness.browser().login(credentials.email, credentials.password).status_code == 200


@pytest.mark.parametrize(
    "body",
    [{}, {"token": ""}, {"token": "x" * 257, "new_password": NEW_PASSWORD}, {"token": "t"}],
)
def test_malformed_reset_confirmations_are_422(harness: Harness, body: dict[str, Any]) -> None:
    response = anonymous_post(harness.browser(), RESET_CONFIRM, body)
    assert response.status_code == 422 and response.json()["code"] == "validation_failed"


# --- audit and secrecy -------------------------------------------------------------------


def test_every_flow_is_audited_with_the_client(harness: Harness) -> None:
    browser, credentials = signed_up(harness)
    user_id = browser.me().json()["id"]
    other = harness.browser()
    other.login_as(credentials)
    third = harness.browser()
    third.login_as(credentials)
    third_id = next(s["id"] for s in third.get(SESSIONS).json()["items"] if s["current"])
    assert harness.browser().login(credentials.email, "Not-the-password-1").status_code == 401
    assert browser.delete(f"{SESSIONS}/{third_id}").status_code == 204
    token = request_verification(harness, browser, credentials.email)
    assert browser.post(VERIFY_CONFIRM, json={"token": token}).status_code == 204
    changed = "Changed-passphrase-for-audit-9"
    response = browser.post(
        "/api/v1/auth/password/change",
        json={"current_password": credentials.password, "new_password": changed},
    )
    assert response.status_code == 204
    other.login_as(Credentials(credentials.email, credentials.username, changed))
    assert browser.post("/api/v1/auth/logout-all", json={"keep_current": True}).status_code == 204
    reset = request_reset(harness, credentials.email)
    body = {"token": reset, "new_password": NEW_PASSWORD}
    assert anonymous_post(harness.browser(), RESET_CONFIRM, body).status_code == 204
    final = harness.browser()
    final.login_as(Credentials(credentials.email, credentials.username, NEW_PASSWORD))
    assert final.post("/api/v1/auth/logout").status_code == 204
    final.login_as(Credentials(credentials.email, credentials.username, NEW_PASSWORD))
    assert final.delete("/api/v1/users/me", json={"password": NEW_PASSWORD}).status_code == 204

    # This user's entries (the services profile shares its database between tests).
    entries = [
        e
        for e in harness.audit()
        if e.actor_id == user_id or (e.target_type, e.target_id) == ("user", str(user_id))
    ]
    actions = [(e.action, e.outcome.value) for e in entries]
    assert set(actions) == {
        ("account.registered", "success"),
        ("auth.login", "success"),
        ("auth.login", "failure"),
        ("auth.session_revoked", "success"),
        ("account.email_verification_requested", "success"),
        ("account.email_verified", "success"),
        ("account.password_changed", "success"),
        ("auth.logout_all", "success"),
        ("account.password_reset_requested", "success"),
        ("account.password_reset", "success"),
        ("auth.logout", "success"),
        ("account.deleted", "success"),
    }
    assert actions.count(("auth.login", "success")) == 6
    assert actions[0] == ("account.deleted", "success")  # newest first
    for entry in entries:
        assert (entry.ip, entry.user_agent) == ("testclient", USER_AGENT), entry
        if entry.action != "account.password_reset_requested" and entry.outcome.value == "success":
            assert entry.actor_id == user_id, entry
    (revoked,) = [e for e in entries if e.action == "auth.session_revoked"]
    assert (revoked.target_type, revoked.target_id) == ("session", str(third_id))
    (failed,) = [e for e in entries if e.outcome.value == "failure"]
    assert failed.details == {"reason": "wrong_password"}


def test_no_secret_reaches_the_audit_trail_or_the_logs(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    browser, credentials = signed_up(harness)
    session_cookie = browser.session_cookie
    csrf = browser.csrf
    assert harness.browser().login(credentials.email, "Wrong-passphrase-00").status_code == 401
    verify = request_verification(harness, browser, credentials.email)
    assert browser.post(VERIFY_CONFIRM, json={"token": verify}).status_code == 204
    reset = request_reset(harness, credentials.email)
    # A wrong token first, then the right one twice (the second is refused).
    for token in ("Bogus-token-with-some-length-0123456789abcdefg", reset, reset):
        anonymous_post(
            harness.browser(), RESET_CONFIRM, {"token": token, "new_password": NEW_PASSWORD}
        )
    later = harness.browser()
    later.login_as(Credentials(credentials.email, credentials.username, NEW_PASSWORD))
    later_cookie = later.session_cookie
    assert later.post("/api/v1/auth/logout").status_code == 204

    trail = json.dumps([asdict(e) for e in harness.audit()], default=str)
    harness.client.app.state.access_log.flush()  # type: ignore[attr-defined]
    logs = capsys.readouterr().out
    assert '"event":"http_request"' in logs.replace(" ", "")  # the capture saw the app's lines
    secrets = {
        "password": credentials.password,
        "new password": NEW_PASSWORD,
        "wrong password": "Wrong-passphrase-00",
        "verification token": verify,
        "reset token": reset,
        "session token": session_cookie,
        "second session token": later_cookie,
        "csrf token": csrf,
    }
    for name, secret in secrets.items():
        assert secret, name
        assert secret not in trail, f"{name} in the audit trail"
        assert secret not in logs, f"{name} in the logs"
