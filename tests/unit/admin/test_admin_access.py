"""Who reaches /admin: anonymous visitors go to the login page, signed-in users who are
not superusers get a 403 page everywhere, superusers get in; the address allow-list;
the panel's CSRF protection (token bound to the session, same origin)."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from core.billing.credits import CreditService
from core.shared.query import PageRequest
from entrypoints.admin.app import AdminPanel
from tests.unit.admin.conftest import MakePanel
from tests.unit.admin.support import AdminBrowser, call, get, make_superuser, user_id_of
from tests.unit.http.support import Browser


def _panel_of(client: TestClient) -> AdminPanel:
    admin = client.app.admin  # type: ignore[attr-defined]
    assert isinstance(admin, AdminPanel)
    return admin


def admin_urls(client: TestClient, user_id: int) -> list[str]:
    """Every page of the panel: the index, each registered view's list (and the users'
    details and manage pages, which hold the actions)."""
    identities = _panel_of(client).view_identities()
    assert {"users", "tiers", "ledger", "audit-log", "jobs", "webhook-events"} <= set(identities)
    return [
        "/admin/",
        *(f"/admin/{identity}/list" for identity in identities),
        f"/admin/users/details/{user_id}",
        f"/admin/manage/users/{user_id}",
    ]


def test_an_anonymous_visitor_is_sent_to_the_login_page(panel: TestClient) -> None:
    browser = Browser(panel)
    for url in admin_urls(panel, 1):
        response = browser.get(url, follow_redirects=False)
        assert response.status_code == 302, url
        assert response.headers["location"].endswith("/admin/login"), url
    assert browser.get("/admin/login").status_code == 200


def test_a_signed_in_user_who_is_not_a_superuser_gets_403_on_every_admin_url(
    panel: TestClient,
) -> None:
    browser = AdminBrowser(panel)
    browser.signup()  # an API session: the same cookie the panel reads
    user_id = user_id_of(browser)
    token = browser.csrf
    assert token
    for url in admin_urls(panel, user_id):
        response = browser.get(url, follow_redirects=False)
        assert response.status_code == 403, url
        assert "superusers only" in response.text
    # Actions too, even with the session's own token and the right origin.
    refused = browser.post(
        f"/admin/manage/users/{user_id}/adjust-credits",
        data={"csrf_token": token, "amount": "500", "reason": "me", "adjustment_key": "k" * 20},
        csrf=False,
    )
    assert refused.status_code == 403
    assert call(panel, get(panel, CreditService).balance(user_id)) == 0


def test_the_panel_login_refuses_a_user_who_is_not_a_superuser(panel: TestClient) -> None:
    browser = AdminBrowser(panel)
    credentials = browser.signup()
    other = AdminBrowser(panel)
    response = other.admin_login(credentials)
    assert response.status_code == 400
    assert other.session_cookie is None


def test_a_superuser_signs_in_and_sees_every_view(panel: TestClient) -> None:
    admin = AdminBrowser(panel)
    credentials = make_superuser(panel, Browser(panel))
    response = admin.admin_login(credentials)
    assert response.status_code == 302 and response.headers["location"].endswith("/admin/")
    assert admin.session_cookie  # an ordinary Portico session
    for url in admin_urls(panel, 1):
        page = admin.get(url)
        assert page.status_code == 200, url
        assert "$argon2" not in page.text and "password_hash" not in page.text.lower()
    # The same session works on the API, and logging out there ends the panel too.
    assert admin.me().status_code == 200
    admin.csrf = admin.admin_csrf
    assert admin.post("/api/v1/auth/logout").status_code == 204
    after = admin.get("/admin/users/list", follow_redirects=False)
    assert after.status_code == 302 and after.headers["location"].endswith("/admin/login")


def test_admin_pages_carry_their_own_security_headers(panel: TestClient) -> None:
    page = Browser(panel).get("/admin/login")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"


# --- CSRF -------------------------------------------------------------------------------


def _adjustment(admin: AdminBrowser, user_id: int, **changes: str) -> dict[str, str]:
    return {"amount": "25", "reason": "support", "adjustment_key": "key-" + "x" * 20, **changes}


@pytest.fixture
def signed_in(panel: TestClient) -> tuple[AdminBrowser, int]:
    admin = AdminBrowser(panel)
    credentials = make_superuser(panel, Browser(panel))
    assert admin.admin_login(credentials).status_code == 302
    return admin, user_id_of(admin)


def _ledger(panel: TestClient, user_id: int) -> list[object]:
    _balance, page = call(panel, get(panel, CreditService).history(user_id, PageRequest()))
    return list(page.items)


def test_an_admin_form_without_the_token_is_refused(
    panel: TestClient, signed_in: tuple[AdminBrowser, int]
) -> None:
    admin, user_id = signed_in
    url = f"/admin/manage/users/{user_id}/adjust-credits"
    missing = admin.post(url, data=_adjustment(admin, user_id), csrf=False)
    assert missing.status_code == 403
    wrong = admin.post(
        url, data={"csrf_token": "x" * 43, **_adjustment(admin, user_id)}, csrf=False
    )
    assert wrong.status_code == 403
    assert _ledger(panel, user_id) == []
    # SQLAdmin's own forms too (its edit form posts no token of its own).
    edit = admin.post("/admin/tiers/edit/free", data={"name": "Hacked"}, csrf=False)
    assert edit.status_code == 403
    # The login form needs its double-submit token.
    anonymous = Browser(panel)
    login = anonymous.post(
        "/admin/login", data={"username": "a@example.com", "password": "x" * 12}, csrf=False
    )
    assert login.status_code == 403
    # With the token, the same request goes through.
    assert admin.form(url, _adjustment(admin, user_id)).status_code == 303
    assert len(_ledger(panel, user_id)) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "http://testserver.evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": "http://testserver"},
    ],
)
def test_a_request_from_another_origin_is_refused_even_with_the_token(
    panel: TestClient, signed_in: tuple[AdminBrowser, int], headers: dict[str, str]
) -> None:
    admin, user_id = signed_in
    response = admin.form(
        f"/admin/manage/users/{user_id}/adjust-credits",
        _adjustment(admin, user_id),
        headers=headers,
    )
    assert response.status_code == 403
    assert "Cross-site" in response.text
    assert _ledger(panel, user_id) == []


def test_the_api_csrf_layer_does_not_apply_to_the_panel(
    panel: TestClient, signed_in: tuple[AdminBrowser, int]
) -> None:
    """The panel's forms send the token in the body, which the API's layer would refuse
    (it wants the X-CSRF-Token header); the answer is the panel's, not a JSON problem."""
    admin, user_id = signed_in
    response = admin.form(
        f"/admin/manage/users/{user_id}/adjust-credits", _adjustment(admin, user_id)
    )
    assert response.status_code == 303
    assert not response.headers.get("content-type", "").startswith("application/problem+json")


# --- the address allow-list ---------------------------------------------------------------


def test_an_address_outside_the_allow_list_is_refused(make_panel: MakePanel) -> None:
    outside = make_panel(client=("192.0.2.10", 40000), admin={"allowed_networks": ["10.0.0.0/8"]})
    response = Browser(outside).get("/admin/login")
    assert response.status_code == 403
    assert "address" in response.text
    # The API itself is not behind the panel's list.
    assert Browser(outside).get("/health").status_code == 200


def test_an_address_inside_the_allow_list_is_let_in(make_panel: MakePanel) -> None:
    inside = make_panel(client=("10.1.2.3", 40000), admin={"allowed_networks": ["10.0.0.0/8"]})
    assert Browser(inside).get("/admin/login").status_code == 200


def test_another_site_cannot_sign_the_operator_out(
    panel: TestClient, signed_in: tuple[AdminBrowser, int]
) -> None:
    admin, _user_id = signed_in
    forged = admin.get(
        "/admin/logout", headers={"Sec-Fetch-Site": "cross-site"}, follow_redirects=False
    )
    assert forged.status_code == 403
    assert admin.get("/admin/").status_code == 200
    own = admin.get("/admin/logout", follow_redirects=False)
    assert own.status_code == 302 and own.headers["location"].endswith("/admin/login")
    after = admin.get("/admin/", follow_redirects=False)
    assert after.status_code == 302
    assert admin.me().status_code == 401  # the Portico session itself ended


def test_read_only_views_refuse_raw_row_edits(
    panel: TestClient, signed_in: tuple[AdminBrowser, int]
) -> None:
    """No row changes behind the services' backs: SQLAdmin's create, edit and delete
    routes are closed on every view but the two that write through a service."""
    admin, user_id = signed_in
    for identity in _panel_of(panel).view_identities():
        if identity not in ("model-prices",):
            assert admin.get(f"/admin/{identity}/create").status_code == 403, identity
        if identity not in ("tiers", "products"):
            assert admin.get(f"/admin/{identity}/edit/1").status_code == 403, identity
        deleted = admin.request(
            "DELETE",
            f"/admin/{identity}/delete?pks=1",
            headers={"X-CSRF-Token": admin.admin_csrf},
            csrf=False,
        )
        assert deleted.status_code == 403, identity
        assert admin.get(f"/admin/{identity}/export/csv").status_code == 403, identity
        imported = admin.form(f"/admin/{identity}/import", files={"file": ("rows.csv", b"id\n9\n")})
        assert imported.status_code == 403, identity
    edit = admin.form(f"/admin/users/edit/{user_id}", {"is_superuser": "y", "email": "x@y.z"})
    assert edit.status_code == 403
