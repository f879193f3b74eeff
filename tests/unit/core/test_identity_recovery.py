"""Email verification, password reset and token upkeep, with every port in memory."""

from __future__ import annotations

import asyncio
import json

import pytest

from core.identity.errors import (
    EmailTakenError,
    InvalidCredentialsError,
    InvalidTokenError,
    UserNotFoundError,
    WeakPasswordError,
)
from core.identity.model import User
from core.identity.one_time_tokens import PURGE_EXPIRED_TOKENS_JOB
from core.identity.recovery import SEND_PASSWORD_RESET_JOB
from core.identity.verification import SEND_VERIFICATION_EMAIL_JOB
from core.notifications.model import EmailCategory
from core.notifications.service import SEND_EMAIL_JOB
from core.platform.jobs import Job, PermanentJobError
from core.shared.hashing import fingerprint
from tests.unit.core.identity_world import (
    FRONTEND,
    NEW_PASSWORD,
    PASSWORD,
    World,
    token_in,
)

VERIFY_SUBJECT = "Confirm your email"
RESET_SUBJECT = "Reset your"
CHANGED_SUBJECT = "password was changed"


@pytest.fixture
def world() -> World:
    return World()


async def signed_up(world: World, name: str = "ada") -> User:
    user = await world.accounts.register(f"{name}@example.com", name, PASSWORD)
    await world.run_jobs()  # the welcome mail
    world.sender.clear()
    return user


def stored_tokens(world: World) -> list[object]:
    return list(world.store.database.one_time_tokens.tokens.values())


# --- registration ------------------------------------------------------------------------


async def test_registration_queues_the_welcome_mail_with_the_account(world: World) -> None:
    user = await world.accounts.register("ada@example.com", "ada", PASSWORD)
    (job,) = world.pending_jobs(SEND_EMAIL_JOB)
    assert job.payload["template"] == "welcome" and job.payload["user_id"] == user.id
    await world.run_jobs()
    (mail,) = world.mails("ada@example.com")
    assert mail.category is EmailCategory.ONBOARDING and "Welcome" in mail.subject
    # A registration that fails queues nothing.
    with pytest.raises(EmailTakenError):
        await world.accounts.register("ADA@example.com", "other", PASSWORD)
    assert world.pending_jobs() == []


# --- email verification ------------------------------------------------------------------


async def test_verification_request_queues_a_job_without_any_token(world: World) -> None:
    user = await signed_up(world)
    assert await world.verification.request_email_verification(user.id)  # type: ignore[arg-type]
    (job,) = world.pending_jobs(SEND_VERIFICATION_EMAIL_JOB)
    assert job.payload == {"user_id": user.id}
    # No token exists until the job runs: nothing secret can sit in the outbox.
    assert stored_tokens(world) == []
    await world.run_jobs()
    (mail,) = world.mails(str(user.email), VERIFY_SUBJECT)
    token = token_in(mail)
    assert mail.category is EmailCategory.SECURITY
    assert f"{FRONTEND}/verify-email?token={token}" in mail.text
    assert "1440 minutes" in mail.text  # 24 hours
    assert len(token) >= 43  # 256 bits, base64url
    # Stored as a fingerprint only.
    (stored,) = world.store.database.one_time_tokens.tokens.values()
    assert stored.token_hash == fingerprint(token) and token not in repr(stored)
    for row in world.jobs.rows.values():
        assert token not in json.dumps(row.payload)


async def test_confirming_marks_the_email_verified_once(world: World) -> None:
    user = await signed_up(world)
    await world.verification.request_email_verification(user.id)  # type: ignore[arg-type]
    await world.run_jobs()
    token = token_in(world.mails(str(user.email), VERIFY_SUBJECT)[0])
    confirmed = await world.verification.confirm_email(token)
    assert confirmed.id == user.id and confirmed.email_verified
    assert (await world.accounts.get(user.id)).email_verified  # type: ignore[arg-type]
    with pytest.raises(InvalidTokenError) as reused:
        await world.verification.confirm_email(token)
    assert reused.value.code == "invalid_token" and reused.value.field == "token"
    # Verified users get nothing more.
    assert not await world.verification.request_email_verification(user.id)  # type: ignore[arg-type]
    assert world.pending_jobs(SEND_VERIFICATION_EMAIL_JOB) == []


async def test_a_burst_of_requests_sends_one_mail_and_a_later_one_another(world: World) -> None:
    user = await signed_up(world)
    for _ in range(5):
        await world.verification.request_email_verification(user.id)  # type: ignore[arg-type]
    await world.run_jobs()
    assert len(world.mails(str(user.email), VERIFY_SUBJECT)) == 1
    world.clock.advance(61)
    await world.verification.request_email_verification(user.id)  # type: ignore[arg-type]
    await world.run_jobs()
    first, second = world.mails(str(user.email), VERIFY_SUBJECT)
    # Either link works until one is used; then the other is dead too.
    await world.verification.confirm_email(token_in(second))
    with pytest.raises(InvalidTokenError):
        await world.verification.confirm_email(token_in(first))


async def test_verification_links_expire(world: World) -> None:
    user = await signed_up(world)
    await world.verification.request_email_verification(user.id)  # type: ignore[arg-type]
    await world.run_jobs()
    token = token_in(world.mails(str(user.email), VERIFY_SUBJECT)[0])
    world.clock.advance(24 * 3600)
    with pytest.raises(InvalidTokenError):
        await world.verification.confirm_email(token)
    assert not (await world.accounts.get(user.id)).email_verified  # type: ignore[arg-type]


async def test_unknown_tokens_and_users_are_refused(world: World) -> None:
    with pytest.raises(InvalidTokenError):
        await world.verification.confirm_email("not-a-token")
    with pytest.raises(UserNotFoundError):
        await world.verification.request_email_verification(999)


async def test_the_send_job_skips_users_verified_or_gone_meanwhile(world: World) -> None:
    user = await signed_up(world)
    await world.verification.request_email_verification(user.id)  # type: ignore[arg-type]
    await world.accounts.delete_account(user.id, PASSWORD)  # type: ignore[arg-type]
    await world.run_jobs()
    assert world.mails(str(user.email), VERIFY_SUBJECT) == []
    assert stored_tokens(world) == []


async def test_send_jobs_with_a_malformed_payload_fail_permanently(world: World) -> None:
    for payload in ({}, {"user_id": "1"}, {"user_id": True}, {"user_id": 0}):
        job = Job(id=1, name=SEND_VERIFICATION_EMAIL_JOB, payload=payload, idempotency_key="k")
        with pytest.raises(PermanentJobError):
            await world.verification.handle_send_verification_email(job)
        with pytest.raises(PermanentJobError):
            await world.reset.handle_send_password_reset(job)


# --- password reset ----------------------------------------------------------------------


async def test_reset_for_unknown_or_malformed_addresses_queues_nothing(world: World) -> None:
    await signed_up(world)
    await world.reset.request_password_reset("nobody@example.com")
    await world.reset.request_password_reset("not an email")
    assert world.pending_jobs() == []
    await world.run_jobs()
    assert world.sender.outbox == []


async def test_reset_request_queues_one_job_per_burst(world: World) -> None:
    user = await signed_up(world)
    for _ in range(3):
        await world.reset.request_password_reset("ADA@example.com")
    (job,) = world.pending_jobs(SEND_PASSWORD_RESET_JOB)
    assert job.payload == {"user_id": user.id}
    await world.run_jobs()
    (mail,) = world.mails(str(user.email), RESET_SUBJECT)
    assert mail.category is EmailCategory.SECURITY
    assert f"{FRONTEND}/reset-password?token=" in mail.text and "30 minutes" in mail.text
    assert mail.message_id == job.idempotency_key


async def test_reset_sets_the_password_ends_sessions_and_works_once(world: World) -> None:
    user = await signed_up(world)
    first = await world.auth.login(str(user.email), PASSWORD)
    second = await world.auth.login(str(user.email), PASSWORD)
    await world.reset.request_password_reset(str(user.email))
    await world.run_jobs()
    token = token_in(world.mails(str(user.email), RESET_SUBJECT)[0])

    await world.reset.reset_password(token, NEW_PASSWORD)

    assert await world.auth.authenticate(first.token) is None
    assert await world.auth.authenticate(second.token) is None
    with pytest.raises(InvalidCredentialsError):
        await world.auth.login(str(user.email), PASSWORD)
    assert (await world.auth.login(str(user.email), NEW_PASSWORD)).user.id == user.id
    # The link reached the mailbox: that verifies the address.
    assert (await world.accounts.get(user.id)).email_verified  # type: ignore[arg-type]
    with pytest.raises(InvalidTokenError):
        await world.reset.reset_password(token, "yet another good passphrase")
    await world.run_jobs()
    (changed,) = world.mails(str(user.email), CHANGED_SUBJECT)
    assert changed.category is EmailCategory.SECURITY


async def test_a_weak_password_does_not_use_the_token_up(world: World) -> None:
    user = await signed_up(world)
    await world.reset.request_password_reset(str(user.email))
    await world.run_jobs()
    token = token_in(world.mails(str(user.email), RESET_SUBJECT)[0])
    with pytest.raises(WeakPasswordError):
        await world.reset.reset_password(token, "short")
    with pytest.raises(WeakPasswordError):
        await world.reset.reset_password(token, "ada@example.com")
    await world.reset.reset_password(token, NEW_PASSWORD)
    assert (await world.auth.login(str(user.email), NEW_PASSWORD)).user.id == user.id


async def test_reset_links_expire_and_do_not_verify_email(world: World) -> None:
    user = await signed_up(world)
    await world.reset.request_password_reset(str(user.email))
    await world.run_jobs()
    reset_token = token_in(world.mails(str(user.email), RESET_SUBJECT)[0])
    await world.verification.request_email_verification(user.id)  # type: ignore[arg-type]
    await world.run_jobs()
    verify_token = token_in(world.mails(str(user.email), VERIFY_SUBJECT)[0])
    # A token is good for its own purpose only.
    with pytest.raises(InvalidTokenError):
        await world.reset.reset_password(verify_token, NEW_PASSWORD)
    with pytest.raises(InvalidTokenError):
        await world.verification.confirm_email(reset_token)
    world.clock.advance(30 * 60)
    with pytest.raises(InvalidTokenError):
        await world.reset.reset_password(reset_token, NEW_PASSWORD)
    assert (await world.auth.login(str(user.email), PASSWORD)).user.id == user.id


async def test_racing_resets_with_one_token_let_one_win(world: World) -> None:
    user = await signed_up(world)
    await world.reset.request_password_reset(str(user.email))
    await world.run_jobs()
    token = token_in(world.mails(str(user.email), RESET_SUBJECT)[0])
    results = await asyncio.gather(
        world.reset.reset_password(token, "first new passphrase 1"),
        world.reset.reset_password(token, "second new passphrase 2"),
        return_exceptions=True,
    )
    assert sum(r is None for r in results) == 1
    assert sum(isinstance(r, InvalidTokenError) for r in results) == 1


async def test_a_password_change_kills_outstanding_reset_links(world: World) -> None:
    user = await signed_up(world)
    await world.reset.request_password_reset(str(user.email))
    await world.run_jobs()
    token = token_in(world.mails(str(user.email), RESET_SUBJECT)[0])
    await world.accounts.change_password(user.id, PASSWORD, NEW_PASSWORD)  # type: ignore[arg-type]
    with pytest.raises(InvalidTokenError):
        await world.reset.reset_password(token, "another fine passphrase")
    await world.run_jobs()
    assert len(world.mails(str(user.email), CHANGED_SUBJECT)) == 1


async def test_reset_and_verification_of_a_deleted_account_fail(world: World) -> None:
    user = await signed_up(world)
    await world.reset.request_password_reset(str(user.email))
    await world.run_jobs()
    token = token_in(world.mails(str(user.email), RESET_SUBJECT)[0])
    await world.accounts.delete_account(user.id, PASSWORD)  # type: ignore[arg-type]
    with pytest.raises(InvalidTokenError):
        await world.reset.reset_password(token, NEW_PASSWORD)
    world.sender.clear()
    await world.reset.request_password_reset(str(user.email))
    assert world.pending_jobs() == []


# --- upkeep ------------------------------------------------------------------------------


async def test_the_purge_job_deletes_expired_tokens_only(world: World) -> None:
    user = await signed_up(world)
    await world.reset.request_password_reset(str(user.email))  # 30 minutes
    await world.verification.request_email_verification(user.id)  # type: ignore[arg-type]
    await world.run_jobs()
    assert len(stored_tokens(world)) == 2
    world.clock.advance(31 * 60)
    job = Job(id=1, name=PURGE_EXPIRED_TOKENS_JOB, payload={}, idempotency_key="p")
    await world.handlers[PURGE_EXPIRED_TOKENS_JOB](job)
    (left,) = stored_tokens(world)
    assert left.purpose == "email_verification"  # type: ignore[attr-defined]
    assert await world.maintenance.purge_expired_tokens() == 0
