"""The admin panel and the API docs in a real browser: Debian's `chromium`, headless,
driven by Playwright (never `playwright install`: the browser comes from apt-get).

A real uvicorn server (the composed app, lifespan included) in a thread; a superuser
signs in through the panel's form, opens the users list and one user, revokes that
user's session with the page's button (its CSRF token travels in the form), and the
session is gone from the store. `/docs` renders Swagger UI from the app's own files.
Screenshots land in `$PORTICO_TEST_ARTIFACTS` (default `var/test-artifacts/`).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from entrypoints.asgi import create_asgi_app
from entrypoints.bootstrap.settings import Settings
from tests.fakes.threaded_server import serving
from tests.services import need
from tests.unit.http.support import new_credentials

pytestmark = pytest.mark.integration

CHROMIUM = os.environ.get("PORTICO_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000


@pytest.fixture
def artifacts() -> Path:
    directory = Path(os.environ.get("PORTICO_TEST_ARTIFACTS", "var/test-artifacts")) / "admin"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    database = tmp_path / "portico.db"
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        env="test",
        secret_key="browser-test-secret-key-that-is-long-enough-0123456789",
        database={"url": f"sqlite+aiosqlite:///{database}", "auto_create": True},
        passwords={"argon2_time_cost": 1, "argon2_memory_kib": 1024, "allow_weak_hashing": True},
        email={"backend": "memory"},
        admin={"enabled": True, "allowed_networks": ["127.0.0.0/8"]},
    )
    with serving(
        create_asgi_app(settings), "Portico app", on_stop=lambda: None, lifespan="on"
    ) as url:
        yield url, database


@pytest.fixture
def browser() -> Iterator[Any]:
    need("Debian's chromium (apt-get install chromium)", shutil.which(CHROMIUM) is not None)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def _signed_up(url: str, email: str, username: str, password: str) -> httpx.Client:
    """A customer signed up and logged in through the API: one live session."""
    client = httpx.Client(base_url=url, timeout=10)
    token = client.get("/api/v1/auth/csrf").json()["csrf_token"]
    body = {"email": email, "username": username, "password": password}
    assert (
        client.post("/api/v1/users", json=body, headers={"X-CSRF-Token": token}).status_code == 201
    )
    token = client.get("/api/v1/auth/csrf").json()["csrf_token"]
    login = client.post(
        "/api/v1/auth/login",
        json={"email": email, "password": password},
        headers={"X-CSRF-Token": token},
    )
    assert login.status_code == 200, login.text
    return client


def _make_superuser(database: Path, email: str) -> None:
    """What `portico create-superuser` ends with: the flag on the account's row."""
    with sqlite3.connect(database) as connection:
        changed = connection.execute(
            "UPDATE users SET is_superuser = 1 WHERE email = ?", (email,)
        ).rowcount
    assert changed == 1


def test_a_superuser_revokes_a_session_in_the_browser_and_docs_render(
    server: tuple[str, Path], browser: Any, artifacts: Path
) -> None:
    url, database = server
    operator = new_credentials()
    _signed_up(url, operator.email, operator.username, operator.password).close()
    _make_superuser(database, operator.email)
    customer_creds = new_credentials()
    customer = _signed_up(
        url, customer_creds.email, customer_creds.username, customer_creds.password
    )
    me = customer.get("/api/v1/users/me")
    assert me.status_code == 200
    customer_id = me.json()["id"]

    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # Anonymous: sent to the login form.
    page.goto(f"{url}/admin/")
    assert page.url.endswith("/admin/login")
    page.fill("#login-email", operator.email)
    page.fill("#login-password", operator.password)
    page.screenshot(path=str(artifacts / "01-login.png"))
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/admin/")
    page.screenshot(path=str(artifacts / "02-index.png"))

    # The users list (through the menu), then the customer's row.
    page.click("text=Identity")
    page.click("a[href$='/admin/users/list']")
    page.wait_for_url(f"{url}/admin/users/list")
    assert page.locator(f"text={customer_creds.email}").count() >= 1
    page.screenshot(path=str(artifacts / "03-users.png"), full_page=True)
    page.click(f"a[href$='/admin/users/details/{customer_id}']")
    page.wait_for_url(f"{url}/admin/users/details/{customer_id}")
    assert page.locator(f"text={customer_creds.email}").count() >= 1
    page.screenshot(path=str(artifacts / "04-user.png"), full_page=True)

    # Its sessions, and the revoke button (a POST form carrying the CSRF token).
    page.click("text=Manage (sessions, credits, status)")
    page.wait_for_url(f"{url}/admin/manage/users/{customer_id}")
    rows = page.locator("#sessions tbody tr[data-session-id]")
    assert rows.count() == 1
    page.screenshot(path=str(artifacts / "05-sessions.png"), full_page=True)
    session_id = rows.first.get_attribute("data-session-id")
    page.click(f"#revoke-session-{session_id}")
    page.wait_for_url(f"{url}/admin/manage/users/{customer_id}")
    assert page.locator("#sessions tbody tr[data-session-id]").count() == 0
    assert page.locator("text=No live session.").count() == 1
    page.screenshot(path=str(artifacts / "06-revoked.png"), full_page=True)
    # Gone from the store: the customer's cookie opens nothing any more.
    assert customer.get("/api/v1/users/me").status_code == 401
    customer.close()
    assert errors == [], errors

    # The API documentation renders from the app's own files (no CDN).
    docs = browser.new_page()
    docs.set_default_timeout(TIMEOUT_MS)
    docs.goto(f"{url}/docs")
    docs.wait_for_selector(".swagger-ui .info .title")
    assert "Portico API" in docs.inner_text(".swagger-ui .info .title")
    docs.wait_for_selector(".opblock")
    assert docs.locator(".opblock").count() > 10
    assert docs.get_by_text("/api/v1/auth/login", exact=True).count() >= 1
    docs.screenshot(path=str(artifacts / "07-docs.png"), full_page=True)
