"""The audit trail of every identity flow, with every port in memory."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict

import pytest

from adapters.memory.audit import InMemoryAuditLog
from core.audit.model import AuditEntry, AuditOutcome
from core.identity.errors import (
    EmailTakenError,
    InvalidCredentialsError,
    InvalidTokenError,
    WrongPasswordError,
)
from core.identity.model import User
from core.shared.context import ClientInfo
from core.shared.errors import UnavailableError
from tests.unit.core.identity_world import NEW_PASSWORD, PASSWORD, World, token_in

CLIENT = ClientInfo(ip="203.0.113.5", user_agent="Mozilla/5.0 TestBrowser/1.0")


@pytest.fixture
def world() -> World:
    return World()


async def signed_up(world: World, name: str = "ada") -> User:
    user = await world.accounts.register(f"{name}@example.com", name, PASSWORD, client=CLIENT)
    await world.run_jobs()
    world.sender.clear()
    return user


def shape(entry: AuditEntry) -> tuple[object, ...]:
    return (
        entry.action,
        entry.outcome.value,
        entry.actor_id,
        entry.target_type,
        entry.target_id,
        entry.details,
    )


def assert_client(entry: AuditEntry) -> None:
    assert (entry.ip, entry.user_agent) == (CLIENT.ip, CLIENT.user_agent)
    assert entry.occurred_at.tzinfo is not None


async def test_registration_is_audited_with_the_account(world: World) -> None:
    user = await signed_up(world)
    (entry,) = await world.audit(action="account.registered")
    assert shape(entry) == ("account.registered", "success", user.id, "user", str(user.id), {})
    assert_client(entry)


async def test_only_the_registration_that_commits_is_audited(world: World) -> None:
    async def register(name: str) -> object:
        return await world.accounts.register("same@example.com", name, PASSWORD, client=CLIENT)

    results = await asyncio.gather(
        *(register(f"user{n}") for n in range(4)), return_exceptions=True
    )
    winners = [r for r in results if isinstance(r, User)]
    assert len(winners) == 1
    assert all(isinstance(r, EmailTakenError) for r in results if not isinstance(r, User))
    entries = await world.audit(action="account.registered")
    assert [e.actor_id for e in entries] == [winners[0].id]


async def test_logins_are_audited_and_failures_answer_alike(world: World) -> None:
    user = await signed_up(world)
    login = await world.auth.login("ada@example.com", PASSWORD, client=CLIENT)
    errors = []
    for email, password in (("nobody@example.com", PASSWORD), ("ada@example.com", "wrong one")):
        with pytest.raises(InvalidCredentialsError) as failed:
            await world.auth.login(email, password, client=CLIENT)
        errors.append((failed.value.code, failed.value.detail))
    assert errors[0] == errors[1]

    wrong, unknown, success = await world.audit(action="auth.login")
    assert shape(success) == (
        "auth.login",
        "success",
        user.id,
        "session",
        str(login.session.id),
        {},
    )
    assert shape(unknown) == (
        "auth.login",
        "failure",
        None,
        None,
        None,
        {"reason": "unknown_account"},
    )
    assert shape(wrong) == (
        "auth.login",
        "failure",
        None,
        "user",
        str(user.id),
        {"reason": "wrong_password"},
    )
    for entry in (success, unknown, wrong):
        assert_client(entry)


async def test_a_session_whose_login_cannot_be_audited_is_ended(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await signed_up(world)

    async def broken(self: InMemoryAuditLog, entry: AuditEntry) -> None:
        raise UnavailableError("down", dependency="database")

    monkeypatch.setattr(InMemoryAuditLog, "record", broken)
    with pytest.raises(UnavailableError):
        await world.auth.login(str(user.email), PASSWORD, client=CLIENT)
    assert await world.sessions.list_for_user(user.id) == []  # type: ignore[arg-type]


async def test_logout_logout_all_and_revocation_are_audited(world: World) -> None:
    user = await signed_up(world)
    a = await world.auth.login(str(user.email), PASSWORD)
    b = await world.auth.login(str(user.email), PASSWORD)
    c = await world.auth.login(str(user.email), PASSWORD)
    d = await world.auth.login(str(user.email), PASSWORD)
    await world.auth.logout(a.token, client=CLIENT)
    await world.auth.logout(a.token, client=CLIENT)  # already gone: nothing more to audit
    await world.auth.revoke_session(user.id, b.session.id, client=CLIENT)  # type: ignore[arg-type]
    assert await world.auth.logout_all(user.id, keep_token=d.token, client=CLIENT) == 1  # type: ignore[arg-type]

    (logout,) = await world.audit(action="auth.logout")
    assert shape(logout) == ("auth.logout", "success", user.id, "session", str(a.session.id), {})
    (revoked,) = await world.audit(action="auth.session_revoked")
    assert shape(revoked) == (
        "auth.session_revoked",
        "success",
        user.id,
        "session",
        str(b.session.id),
        {},
    )
    (everything,) = await world.audit(action="auth.logout_all")
    assert shape(everything) == (
        "auth.logout_all",
        "success",
        user.id,
        "user",
        str(user.id),
        {"count": 1, "kept_current": True},
    )
    for entry in (logout, revoked, everything):
        assert_client(entry)
    assert await world.auth.authenticate(c.token) is None
    assert await world.auth.authenticate(d.token) is not None


async def test_password_change_and_its_failure_are_audited(world: World) -> None:
    user = await signed_up(world)
    with pytest.raises(WrongPasswordError):
        await world.accounts.change_password(user.id, "not it", NEW_PASSWORD, client=CLIENT)  # type: ignore[arg-type]
    await world.accounts.change_password(user.id, PASSWORD, NEW_PASSWORD, client=CLIENT)  # type: ignore[arg-type]
    done, failed = await world.audit(action="account.password_changed")
    target = ("user", str(user.id))
    assert shape(done) == ("account.password_changed", "success", user.id, *target, {})
    assert shape(failed) == (
        "account.password_changed",
        "failure",
        user.id,
        *target,
        {"reason": "wrong_password"},
    )


async def test_account_deletion_and_its_failure_are_audited(world: World) -> None:
    user = await signed_up(world)
    with pytest.raises(WrongPasswordError):
        await world.accounts.delete_account(user.id, "not it", client=CLIENT)  # type: ignore[arg-type]
    await world.accounts.delete_account(user.id, PASSWORD, client=CLIENT)  # type: ignore[arg-type]
    done, failed = await world.audit(action="account.deleted")
    assert (done.outcome, failed.outcome) == (AuditOutcome.SUCCESS, AuditOutcome.FAILURE)
    assert done.actor_id == failed.actor_id == user.id
    assert_client(done)


async def test_reset_requests_are_audited_alike_for_known_and_unknown_addresses(
    world: World,
) -> None:
    user = await signed_up(world)
    await world.reset.request_password_reset("ada@example.com", client=CLIENT)
    await world.reset.request_password_reset("ghost@example.com", client=CLIENT)
    ghost, known = await world.audit(action="account.password_reset_requested")
    assert shape(known) == (
        "account.password_reset_requested",
        "success",
        None,
        "user",
        str(user.id),
        {"known_account": True},
    )
    assert shape(ghost) == (
        "account.password_reset_requested",
        "success",
        None,
        None,
        None,
        {"known_account": False},
    )
    # The address asked about is not kept: it could be anyone's (or a typo'd password).
    assert "ghost" not in json.dumps(asdict(ghost), default=str)


async def test_reset_and_verification_are_audited_with_their_failures(world: World) -> None:
    user = await signed_up(world)
    await world.reset.request_password_reset(str(user.email))
    await world.verification.request_email_verification(user.id, client=CLIENT)  # type: ignore[arg-type]
    await world.run_jobs()
    reset_token = token_in(world.mails(str(user.email), "Reset")[0])
    verify_token = token_in(world.mails(str(user.email), "Confirm")[0])

    await world.verification.confirm_email(verify_token, client=CLIENT)
    with pytest.raises(InvalidTokenError):
        await world.verification.confirm_email(verify_token, client=CLIENT)
    await world.reset.reset_password(reset_token, NEW_PASSWORD, client=CLIENT)
    with pytest.raises(InvalidTokenError):
        await world.reset.reset_password(reset_token, NEW_PASSWORD, client=CLIENT)

    (requested,) = await world.audit(action="account.email_verification_requested")
    assert shape(requested)[:5] == (
        "account.email_verification_requested",
        "success",
        user.id,
        "user",
        str(user.id),
    )
    failed, verified = await world.audit(action="account.email_verified")
    assert shape(verified) == (
        "account.email_verified",
        "success",
        user.id,
        "user",
        str(user.id),
        {},
    )
    assert shape(failed) == (
        "account.email_verified",
        "failure",
        None,
        None,
        None,
        {"reason": "invalid_token"},
    )
    failed, reset = await world.audit(action="account.password_reset")
    assert shape(reset) == ("account.password_reset", "success", user.id, "user", str(user.id), {})
    assert shape(failed)[1:] == ("failure", None, None, None, {"reason": "invalid_token"})
    for entry in (requested, verified, reset, failed):
        assert_client(entry)


async def test_no_audit_entry_holds_a_password_token_or_hash(world: World) -> None:
    user = await signed_up(world)
    login = await world.auth.login(str(user.email), PASSWORD, client=CLIENT)
    with pytest.raises(InvalidCredentialsError):
        await world.auth.login(str(user.email), "wrong password 1", client=CLIENT)
    await world.reset.request_password_reset(str(user.email), client=CLIENT)
    await world.verification.request_email_verification(user.id, client=CLIENT)  # type: ignore[arg-type]
    await world.run_jobs()
    reset_token = token_in(world.mails(str(user.email), "Reset")[0])
    verify_token = token_in(world.mails(str(user.email), "Confirm")[0])
    await world.verification.confirm_email(verify_token, client=CLIENT)
    await world.reset.reset_password(reset_token, NEW_PASSWORD, client=CLIENT)
    stored = await world.accounts.get(user.id)  # type: ignore[arg-type]

    trail = json.dumps([asdict(e) for e in await world.audit()], default=str)
    assert len(await world.audit()) >= 7
    for secret in (
        PASSWORD,
        NEW_PASSWORD,
        "wrong password 1",
        reset_token,
        verify_token,
        login.token,
        login.session.token_hash,
        login.session.csrf_token,
        stored.password_hash,
        user.password_hash,
    ):
        assert secret not in trail
