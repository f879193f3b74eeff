"""A deactivated account over HTTP, on every profile: its browser session and its bearer
token stop working at once, and neither sign-in works, with the login answer."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from core.identity.administration import UserAdministration
from tests.unit.http.bearer_support import MobileApp
from tests.unit.http.support import Browser


def _call(client: TestClient, coroutine: Any) -> Any:
    assert client.portal is not None
    return client.portal.call(lambda: coroutine)


def test_a_deactivated_account_is_signed_out_everywhere(client: TestClient) -> None:
    browser = Browser(client)
    credentials = browser.signup()
    app = MobileApp(client)
    assert app.sign_in(credentials).status_code == 200
    assert browser.me().status_code == 200 and app.me().status_code == 200
    user_id = browser.me().json()["id"]
    admin = client.app.state.runtime.get(UserAdministration)  # type: ignore[attr-defined]

    _call(client, admin.deactivate(user_id, actor_id=None, reason="test"))

    assert browser.me().status_code == 401
    assert app.me().status_code == 401
    assert app.refresh().status_code == 401
    for response in (
        browser.login(credentials.email, credentials.password),
        MobileApp(client).sign_in(credentials),
    ):
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_credentials"

    _call(client, admin.reactivate(user_id, actor_id=None))
    assert browser.login(credentials.email, credentials.password).status_code == 200
    assert browser.me().status_code == 200
