"""What a superuser does in the panel, each through a core service: a credit adjustment
(one ledger entry, one audit record), a tier edit, a new model price, a session revoked,
the user actions (`UserAdministration`, a fake here), a dead job retried."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from starlette.testclient import TestClient

from core.audit.model import AuditEntry
from core.audit.service import AuditTrail
from core.billing.catalog import CatalogService
from core.billing.credits import CreditService
from core.billing.seed import seed_catalog
from core.conversations.prices import PriceService
from core.identity.service import AuthenticationService
from core.platform.job_admin import JobAdminService
from core.platform.jobs import Outbox
from core.shared.query import ListQuery, PageRequest, parse_filters
from tests.unit.admin.support import (
    AdminBrowser,
    call,
    get,
    make_superuser,
    user_id_of,
)
from tests.unit.http.support import Browser


@pytest.fixture
def signed_in(panel: TestClient) -> tuple[AdminBrowser, int]:
    admin = AdminBrowser(panel)
    credentials = make_superuser(panel, Browser(panel))
    assert admin.admin_login(credentials).status_code == 302
    return admin, user_id_of(admin)


def audit_entries(panel: TestClient, **filters: Any) -> list[AuditEntry]:
    query = ListQuery(conditions=parse_filters(filters), page=PageRequest(limit=100))
    return list(call(panel, get(panel, AuditTrail).entries(query)).items)


def ledger(panel: TestClient, user_id: int) -> list[Any]:
    _balance, page = call(panel, get(panel, CreditService).history(user_id, PageRequest()))
    return list(page.items)


def test_a_credit_adjustment_writes_one_ledger_entry_and_one_audit_record(
    panel: TestClient, signed_in: tuple[AdminBrowser, int]
) -> None:
    admin, admin_id = signed_in
    customer = Browser(panel)
    customer.signup()
    user_id = user_id_of(customer)
    page = admin.get(f"/admin/manage/users/{user_id}")
    assert page.status_code == 200 and "Credits: 0" in page.text
    form = {"amount": "120", "reason": "goodwill after an outage", "adjustment_key": "a" * 24}
    response = admin.form(f"/admin/manage/users/{user_id}/adjust-credits", form)
    assert response.status_code == 303
    # The same form sent again (a double click, a reload) changes nothing more.
    assert admin.form(f"/admin/manage/users/{user_id}/adjust-credits", form).status_code == 303
    entries = ledger(panel, user_id)
    assert len(entries) == 1
    assert entries[0].delta == 120 and entries[0].source == "admin"
    assert entries[0].note == "goodwill after an outage"
    audited = audit_entries(panel, target_type="user", target_id=str(user_id))
    money = [e for e in audited if e.action.startswith("credits.")]
    assert len(money) == 1
    assert money[0].action == "credits.granted" and money[0].actor_id == admin_id
    assert money[0].details["amount"] == 120

    # A negative amount takes back, through the same service; never below zero.
    take = {"amount": "-500", "reason": "mistaken grant", "adjustment_key": "b" * 24}
    assert admin.form(f"/admin/manage/users/{user_id}/adjust-credits", take).status_code == 303
    assert call(panel, get(panel, CreditService).balance(user_id)) == 0
    reversed_ = [e for e in audit_entries(panel, action="credits.reversed", target_id=str(user_id))]
    assert len(reversed_) == 1 and reversed_[0].actor_id == admin_id
    assert reversed_[0].details["amount"] == 120 and reversed_[0].details["not_recovered"] == 380
    assert len(ledger(panel, user_id)) == 2


@pytest.mark.parametrize(
    "form",
    [
        {"amount": "0", "reason": "nothing"},
        {"amount": "ten", "reason": "words"},
        {"amount": "5", "reason": ""},
        {"amount": "5", "reason": "r" * 201},
        {"amount": "5", "reason": "ok", "adjustment_key": "short"},
    ],
)
def test_a_bad_adjustment_is_refused_and_changes_nothing(
    panel: TestClient, signed_in: tuple[AdminBrowser, int], form: dict[str, str]
) -> None:
    admin, admin_id = signed_in
    body = {"adjustment_key": "c" * 24, **form}
    response = admin.form(f"/admin/manage/users/{admin_id}/adjust-credits", body)
    assert response.status_code == 409
    assert ledger(panel, admin_id) == []
    assert audit_entries(panel, action="credits.granted", target_id=str(admin_id)) == []


def _own_tier(panel: TestClient) -> str:
    """A tier of this test's own (the services profile shares one database per run)."""
    pro = call(panel, get(panel, CatalogService).tier("pro"))
    code = f"t_{uuid.uuid4().hex[:12]}"
    call(
        panel,
        get(panel, CatalogService).create_tier(
            pro.copy(code=code, name="Team", gateway_price_id=None)
        ),
    )
    return code


def _own_product(panel: TestClient) -> str:
    small = call(panel, get(panel, CatalogService).product("small"))
    code = f"p_{uuid.uuid4().hex[:12]}"
    call(
        panel,
        get(panel, CatalogService).create_product(small.copy(code=code, gateway_price_id=None)),
    )
    return code


def test_a_superuser_edits_a_tier_through_the_catalog_service(
    panel: TestClient, signed_in: tuple[AdminBrowser, int]
) -> None:
    admin, admin_id = signed_in
    call(panel, seed_catalog(get(panel, CatalogService)))
    code = _own_tier(panel)
    assert code in admin.get("/admin/tiers/list").text
    edit = admin.get(f"/admin/tiers/edit/{code}")
    assert edit.status_code == 200 and 'name="price"' in edit.text
    response = admin.form(
        f"/admin/tiers/edit/{code}",
        {"name": "Team plus", "price": "25000000", "public": "y", "rank": "20"},
    )
    assert response.status_code == 302, response.text
    tier = call(panel, get(panel, CatalogService).tier(code))
    assert tier.name == "Team plus" and tier.price == 25_000_000 and tier.rank == 20
    assert tier.public and tier.gateway_price_id is None
    updated = audit_entries(panel, action="billing.tier_updated", actor_id=admin_id)
    assert len(updated) == 1 and updated[0].target_id == code
    # A value the core refuses changes nothing.
    refused = admin.form(f"/admin/tiers/edit/{code}", {"name": "", "price": "-1", "rank": "1"})
    assert refused.status_code == 400, refused.text
    assert call(panel, get(panel, CatalogService).tier(code)).name == "Team plus"


def test_a_superuser_edits_a_product_through_the_catalog_service(
    panel: TestClient, signed_in: tuple[AdminBrowser, int]
) -> None:
    admin, admin_id = signed_in
    call(panel, seed_catalog(get(panel, CatalogService)))
    code = _own_product(panel)
    form = {
        "name": "Small pack",
        "price": "6000000",
        "credits": "1200",
        "active": "y",
        "gateway_price_id": "price_small_2",
    }
    response = admin.form(f"/admin/products/edit/{code}", form)
    assert response.status_code == 302, response.text
    product = call(panel, get(panel, CatalogService).product(code))
    assert (product.price, product.credits, product.active) == (6_000_000, 1200, True)
    assert product.gateway_price_id == "price_small_2"
    updated = audit_entries(panel, action="billing.product_updated", actor_id=admin_id)
    assert len(updated) == 1 and updated[0].target_id == code
    # A credit pack without credits breaks the core's rule: refused, nothing changed.
    refused = admin.form(f"/admin/products/edit/{code}", {**form, "credits": "0"})
    assert refused.status_code == 400
    assert call(panel, get(panel, CatalogService).product(code)).credits == 1200


def test_a_superuser_adds_a_model_price_through_the_price_service(
    panel: TestClient, signed_in: tuple[AdminBrowser, int]
) -> None:
    admin, admin_id = signed_in
    response = admin.form(
        "/admin/model-prices/create",
        {
            "model": "gpt-test-mini",
            "input_per_million": "150000",
            "output_per_million": "600000",
            "currency": "usd",
            "effective_from": "2026-01-01 00:00:00",
        },
    )
    assert response.status_code == 302, response.text
    price = call(panel, get(panel, PriceService).current("gpt-test-mini"))
    assert price.input_per_million == 150_000 and price.output_per_million == 600_000
    assert price.effective_from == datetime(2026, 1, 1, tzinfo=UTC)
    audited = audit_entries(panel, action="admin.model_price_set", actor_id=admin_id)
    assert len(audited) == 1 and audited[0].actor_id == admin_id
    assert audited[0].details["model"] == "gpt-test-mini"
    assert "gpt-test-mini" in admin.get("/admin/model-prices/list").text


def test_a_superuser_revokes_a_session_through_the_session_service(
    panel: TestClient, signed_in: tuple[AdminBrowser, int]
) -> None:
    admin, admin_id = signed_in
    customer = Browser(panel)
    customer.signup()
    user_id = user_id_of(customer)
    sessions = call(panel, get(panel, AuthenticationService).list_sessions(user_id))
    assert len(sessions) == 1
    page = admin.get(f"/admin/manage/users/{user_id}")
    assert f'data-session-id="{sessions[0].id}"' in page.text
    response = admin.form(
        f"/admin/manage/users/{user_id}/revoke-session", {"session_id": str(sessions[0].id)}
    )
    assert response.status_code == 303
    assert call(panel, get(panel, AuthenticationService).list_sessions(user_id)) == []
    assert customer.me().status_code == 401
    audited = audit_entries(panel, action="admin.session_revoked", actor_id=admin_id)
    assert len(audited) == 1 and audited[0].actor_id == admin_id
    assert audited[0].target_id == str(user_id)
    # Another user's session id, or one already gone, is refused.
    again = admin.form(
        f"/admin/manage/users/{user_id}/revoke-session", {"session_id": str(sessions[0].id)}
    )
    assert again.status_code == 404


def test_the_user_actions_go_through_user_administration_with_the_operator(
    panel: TestClient, signed_in: tuple[AdminBrowser, int]
) -> None:
    admin, admin_id = signed_in
    customer = Browser(panel)
    credentials = customer.signup()
    customer_id = user_id_of(customer)
    assert customer.me().status_code == 200

    # Deactivated: signed out at once, and no new sign-in.
    response = admin.form(f"/admin/manage/users/{customer_id}/deactivate", {"reason": "fraud"})
    assert response.status_code == 303
    assert customer.me().status_code == 401
    assert Browser(panel).login(credentials.email, credentials.password).status_code == 401
    deactivated = audit_entries(panel, action="account.deactivated", actor_id=admin_id)
    assert [e.target_id for e in deactivated] == [str(customer_id)]

    # Reactivated: the account signs in again.
    assert admin.form(f"/admin/manage/users/{customer_id}/reactivate").status_code == 303
    again = Browser(panel)
    assert (
        again.login(credentials.email, credentials.password).status_code == 200
        and again.me().status_code == 200
    )

    # Email verified by the operator.
    assert admin.form(f"/admin/manage/users/{customer_id}/verify-email").status_code == 303
    assert again.me().json()["email_verified"] is True
    verified = audit_entries(panel, action="account.email_verified", actor_id=admin_id)
    assert [e.target_id for e in verified] == [str(customer_id)]

    # Every session ended.
    assert admin.form(f"/admin/manage/users/{customer_id}/end-sessions").status_code == 303
    assert again.me().status_code == 401
    ended = audit_entries(panel, action="account.sessions_ended", actor_id=admin_id)
    assert len(ended) == 1

    # Without the form token nothing happens.
    signed = Browser(panel)
    assert signed.login(credentials.email, credentials.password).status_code == 200
    refused = admin.post(f"/admin/manage/users/{customer_id}/end-sessions", data={}, csrf=False)
    assert refused.status_code == 403
    assert signed.me().status_code == 200


def test_a_dead_job_is_retried_through_the_job_admin_service(
    panel: TestClient, signed_in: tuple[AdminBrowser, int]
) -> None:
    admin, admin_id = signed_in
    outbox = get(panel, Outbox)
    now = datetime.now(UTC)
    key = f"dead-{uuid.uuid4().hex}"
    assert call(panel, outbox.add("admin.test_job", {"n": 1}, idempotency_key=key, now=now))
    job_id = _kill_the_job(panel, key)
    page = admin.get(f"/admin/jobs/details/{job_id}")
    assert page.status_code == 200 and 'id="action-retry"' in page.text
    response = admin.form(f"/admin/jobs/{job_id}/retry")
    assert response.status_code == 303
    dead = call(panel, get(panel, JobAdminService).list_dead())
    assert job_id not in {job.id for job in dead}
    audited = audit_entries(panel, action="admin.job_retried", actor_id=admin_id)
    assert len(audited) == 1 and audited[0].actor_id == admin_id
    # A job that is not dead is not retried.
    assert admin.form(f"/admin/jobs/{job_id}/retry").status_code == 404


def _kill_the_job(panel: TestClient, key: str) -> int:
    """Mark the job dead in its table (what running out of attempts does)."""
    from sqlalchemy import update

    from adapters.sqlalchemy.records_jobs import JobRecord

    engine_owner = panel.app.admin  # type: ignore[attr-defined]

    async def kill() -> int:
        async with engine_owner.admin.session_maker() as session:
            await session.execute(
                update(JobRecord)
                .where(JobRecord.idempotency_key == key)
                .values(status="dead", last_error="boom", finished_at=datetime.now(UTC))
            )
            await session.commit()
            found = await session.execute(
                JobRecord.__table__.select().where(JobRecord.idempotency_key == key)
            )
            return int(found.first().id)

    return call(panel, kill())  # type: ignore[no-any-return]


def test_a_webhook_event_is_replayed_through_the_payment_event_service(
    panel: TestClient, signed_in: tuple[AdminBrowser, int]
) -> None:
    admin, admin_id = signed_in
    call(panel, seed_catalog(get(panel, CatalogService)))
    buyer = Browser(panel)
    buyer.signup()
    buyer_id = user_id_of(buyer)
    checkout = buyer.post("/api/v1/billing/checkout", json={"credit_pack": "small"})
    assert checkout.status_code == 200, checkout.text
    paid = Browser(panel).post(urlsplit(checkout.json()["url"]).path, follow_redirects=False)
    assert paid.status_code == 303
    balance = call(panel, get(panel, CreditService).balance(buyer_id))
    assert balance > 0
    event_id = _latest_event(panel)
    page = admin.get(f"/admin/webhook-events/details/{event_id}")
    assert page.status_code == 200 and 'id="action-replay"' in page.text
    response = admin.form(f"/admin/webhook-events/{event_id}/replay")
    assert response.status_code == 303
    # Its effects are idempotent: the credits are not granted twice.
    assert call(panel, get(panel, CreditService).balance(buyer_id)) == balance
    audited = audit_entries(panel, action="admin.webhook_event_replayed", actor_id=admin_id)
    assert len(audited) == 1
    unknown = admin.form("/admin/webhook-events/evt_unknown_to_everyone/replay")
    assert unknown.status_code == 404


def _latest_event(panel: TestClient) -> str:
    from sqlalchemy import select

    from adapters.sqlalchemy.records_payment_events import WebhookEventRecord

    owner = panel.app.admin  # type: ignore[attr-defined]

    async def latest() -> str:
        async with owner.admin.session_maker() as session:
            found = await session.execute(
                select(WebhookEventRecord.id).order_by(WebhookEventRecord.received_at.desc())
            )
            return str(found.scalars().first())

    return call(panel, latest())  # type: ignore[no-any-return]


def test_the_audit_log_is_filtered_by_action_and_actor(
    panel: TestClient, signed_in: tuple[AdminBrowser, int]
) -> None:
    admin, admin_id = signed_in
    trail = get(panel, AuditTrail)
    call(panel, trail.record("admin.probe_one", actor_id=admin_id, target_id="one-1"))
    call(panel, trail.record("admin.probe_two", actor_id=admin_id, target_id="two-2"))
    call(panel, trail.record("admin.probe_one", actor_id=admin_id + 1000, target_id="three-3"))
    by_action = admin.get("/admin/audit-log/list?action=admin.probe_one").text
    assert "one-1" in by_action and "three-3" in by_action and "two-2" not in by_action
    by_actor = admin.get(
        f"/admin/audit-log/list?action=admin.probe_one&actor_id={admin_id}&actor_id_op=equals"
    ).text
    assert "one-1" in by_actor and "three-3" not in by_actor
    # Read-only: no create, edit or delete on the trail.
    assert admin.get("/admin/audit-log/create").status_code == 403
