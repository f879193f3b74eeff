"""Single-use tokens for links in mail (verification, password reset): issuing them,
the job plumbing the mail senders share, and purging expired ones."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from core.identity.model import OneTimeToken, TokenPurpose, User
from core.identity.ports import IdentityUnitOfWork, IdentityUnitOfWorkFactory
from core.notifications.model import EmailCategory
from core.notifications.service import NotificationService
from core.platform.jobs import Job, PermanentJobError
from core.shared.clock import Clock
from core.shared.hashing import fingerprint
from core.shared.ids import TokenGenerator

TOKEN_BYTES = 32  # 256 bits
PURGE_EXPIRED_TOKENS_JOB = "identity.purge_expired_tokens"


async def issue_token(
    tx: IdentityUnitOfWork,
    tokens: TokenGenerator,
    *,
    user_id: int,
    purpose: TokenPurpose,
    now: datetime,
    lifetime_seconds: int,
) -> str:
    """Store a new token's fingerprint in `tx` and return the token itself.

    The raw token exists only in the caller's memory and in the mail it goes into.
    """
    raw = tokens.token(TOKEN_BYTES)
    await tx.one_time_tokens.add(
        OneTimeToken(
            token_hash=fingerprint(raw),
            user_id=user_id,
            purpose=purpose,
            created_at=now,
            expires_at=now + timedelta(seconds=lifetime_seconds),
        )
    )
    return raw


async def mail_token_link(
    uow: IdentityUnitOfWorkFactory,
    tokens: TokenGenerator,
    notifications: NotificationService,
    *,
    user_id: int,
    purpose: TokenPurpose,
    now: datetime,
    lifetime_seconds: int,
    template: str,
    link: Callable[[str], str],
    message_id: str | None,
    wanted: Callable[[User], bool] = lambda user: True,
) -> bool:
    """Issue a token for the user and mail its link now (the work of a link-mail job).

    False, and nothing sent, when the user is gone or `wanted` says no. The token is
    committed before the mail goes out; a retry after a failed send issues a fresh one
    and the unsent one just expires.
    """
    async with uow() as tx:
        user = await tx.users.get(user_id)
        if user is None or not wanted(user):
            return False
        token = await issue_token(
            tx, tokens, user_id=user_id, purpose=purpose, now=now, lifetime_seconds=lifetime_seconds
        )
        await tx.commit()
    await notifications.deliver(
        user_id=user_id,
        to=str(user.email),
        template=template,
        context={
            "username": str(user.username),
            "link": link(token),
            "expires_minutes": minutes(lifetime_seconds),
        },
        category=EmailCategory.SECURITY,
        message_id=message_id,
    )
    return True


def burst_key(kind: str, user_id: int, now: datetime, window_seconds: int) -> str:
    """An idempotency key shared by every request of one kind and user in one window."""
    return f"{kind}:{user_id}:{int(now.timestamp()) // window_seconds}"


def job_user_id(job: Job) -> int:
    """The `user_id` of a `{"user_id": int}` payload; a malformed one is permanent."""
    payload: Mapping[str, Any] = job.payload
    user_id = payload.get("user_id")
    if not isinstance(user_id, int) or isinstance(user_id, bool) or user_id < 1:
        raise PermanentJobError(f"{job.name} job {job.id}: payload needs a user_id")
    return user_id


def minutes(seconds: int) -> str:
    """A lifetime as whole minutes for mail text (never rounded down to 0)."""
    return str(max(1, seconds // 60))


class TokenMaintenanceService:
    """Rules for keeping the token table small.

    - Expired tokens, used or not, are deleted by the periodic
      `identity.purge_expired_tokens` job; a usable token is never deleted. Expired
      refresh tokens go with them (an expired refresh token is refused anyway, so its
      row no longer serves reuse detection).
    - Used tokens that have not expired yet stay until they expire, so a reused link
      keeps getting the same `invalid_token` answer.
    """

    def __init__(self, uow: IdentityUnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def purge_expired_tokens(self) -> int:
        """Delete every expired token (refresh tokens too); returns how many went."""
        now = self._clock.now()
        async with self._uow() as tx:
            count = await tx.one_time_tokens.purge_expired(now)
            count += await tx.refresh_tokens.purge_expired(now)
            await tx.commit()
        return count

    async def handle_purge_expired_tokens(self, job: Job) -> None:
        """The `identity.purge_expired_tokens` handler; idempotent by nature."""
        await self.purge_expired_tokens()
