"""Helpers for the admin tests: users made superusers through the unit of work, an admin
browser that signs in through the panel's own form, and a fake `UserAdministration`."""

from __future__ import annotations

import re
from typing import Any

from starlette.testclient import TestClient

from core.identity.ports import IdentityUnitOfWorkFactory
from tests.unit.http.support import Browser, Credentials

_META = re.compile(r'<meta name="csrf-token" content="([^"]*)">')
_FIELD = re.compile(r'name="csrf_token" value="([^"]*)"')


def call(client: TestClient, coroutine: Any) -> Any:
    """Run a coroutine on the app's event loop (the runtime lives there)."""
    assert client.portal is not None
    return client.portal.call(lambda: coroutine)


def runtime_of(client: TestClient) -> Any:
    return client.app.state.runtime  # type: ignore[attr-defined]


def get(client: TestClient, kind: type) -> Any:
    return runtime_of(client).get(kind)


async def _promote(uow: IdentityUnitOfWorkFactory, user_id: int) -> None:
    async with uow() as tx:
        user = await tx.users.get(user_id)
        assert user is not None
        await tx.users.update(user.copy(is_superuser=True))  # type: ignore[attr-defined]
        await tx.commit()


def user_id_of(browser: Browser) -> int:
    response = browser.me()
    assert response.status_code == 200, response.text
    return int(response.json()["id"])


def make_superuser(client: TestClient, browser: Browser) -> Credentials:
    """A new account signed up through the API, promoted in the store, then logged out
    of the API (the panel's login makes its own session)."""
    credentials = browser.signup()
    call(client, _promote(get(client, IdentityUnitOfWorkFactory), user_id_of(browser)))
    return credentials


def token_in(page: str) -> str:
    found = _META.search(page) or _FIELD.search(page)
    assert found is not None, "the page carries no CSRF token"
    return found.group(1)


class AdminBrowser(Browser):
    """A browser on the panel: `admin_csrf` is the token its pages carry."""

    admin_csrf: str = ""

    def admin_login(self, credentials: Credentials) -> Any:
        page = self.get("/admin/login")
        assert page.status_code == 200, page.text
        response = self.post(
            "/admin/login",
            data={
                "username": credentials.email,
                "password": credentials.password,
                "csrf_token": token_in(page.text),
            },
            csrf=False,
            follow_redirects=False,
        )
        if response.status_code == 302:
            self.credentials = credentials
            self.admin_csrf = token_in(self.get("/admin/").text)
        return response

    def form(self, url: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """A POST as the panel's pages send it: the form token in the body."""
        body = {"csrf_token": self.admin_csrf, **(data or {})}
        return self.post(url, data=body, csrf=False, follow_redirects=False, **kwargs)
