"""Proving that a user controls their email address."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from core.audit.model import AuditOutcome
from core.identity.auditing import IdentityAction, identity_entry, record_alone
from core.identity.errors import InvalidTokenError, UserNotFoundError
from core.identity.model import TokenPurpose, User
from core.identity.one_time_tokens import burst_key, job_user_id, mail_token_link
from core.identity.policy import AccountLinkPolicy
from core.identity.ports import IdentityUnitOfWork, IdentityUnitOfWorkFactory
from core.notifications.service import NotificationService
from core.platform.jobs import Job
from core.shared.clock import Clock
from core.shared.context import NO_CLIENT, ClientInfo
from core.shared.hashing import fingerprint
from core.shared.ids import TokenGenerator

SEND_VERIFICATION_EMAIL_JOB = "identity.send_verification_email"
VERIFY_EMAIL_TEMPLATE = "verify_email"


class EmailVerificationService:
    """Rules for email verification.

    - A signed-in user asks for a verification mail; the request only queues a job
      (`identity.send_verification_email`, payload `{user_id}`), folded with the other
      requests of the same window. Users already verified get nothing queued.
    - The token is made when the job runs, not when it is queued, so no usable token
      ever sits in the job outbox; only its fingerprint is stored. It carries 256 random
      bits and works once, for `verification_lifetime_seconds`.
    - The mail is security mail: preferences cannot switch it off.
    - Confirming with a usable token marks the email verified and ends the user's other
      verification tokens. Unknown, used, expired or foreign-purpose tokens all get the
      same `InvalidTokenError`. Every request and confirmation, failed ones included, is
      audited.
    """

    def __init__(
        self,
        uow: IdentityUnitOfWorkFactory,
        notifications: NotificationService,
        tokens: TokenGenerator,
        clock: Clock,
        links: AccountLinkPolicy,
    ) -> None:
        self._uow = uow
        self._notifications = notifications
        self._tokens = tokens
        self._clock = clock
        self._links = links

    async def request_email_verification(
        self, user_id: int, *, client: ClientInfo = NO_CLIENT
    ) -> bool:
        """Queue a verification mail for the user; False when already verified."""
        now = self._clock.now()
        async with self._uow() as tx:
            user = await tx.users.get(user_id)
            if user is None:
                raise UserNotFoundError()
            if user.email_verified:
                return False
            await tx.jobs.enqueue(
                SEND_VERIFICATION_EMAIL_JOB,
                {"user_id": user_id},
                idempotency_key=burst_key(
                    VERIFY_EMAIL_TEMPLATE, user_id, now, self._links.request_window_seconds
                ),
            )
            await tx.audit.record(
                identity_entry(
                    IdentityAction.EMAIL_VERIFICATION_REQUESTED,
                    now=now,
                    client=client,
                    actor_id=user_id,
                    user_id=user_id,
                )
            )
            await tx.commit()
        return True

    async def send_verification_email(self, user_id: int, *, message_id: str | None = None) -> bool:
        """Issue a token and mail its link now (the job's work).

        False, and nothing sent, when the user is gone or already verified. A retry after
        a failed send issues a fresh token; the unsent one just expires.
        """
        return await mail_token_link(
            self._uow,
            self._tokens,
            self._notifications,
            user_id=user_id,
            purpose=TokenPurpose.EMAIL_VERIFICATION,
            now=self._clock.now(),
            lifetime_seconds=self._links.verification_lifetime_seconds,
            template=VERIFY_EMAIL_TEMPLATE,
            link=self._links.verification_link,
            message_id=message_id,
            wanted=lambda user: not user.email_verified,
        )

    async def handle_send_verification_email(self, job: Job) -> None:
        """The `identity.send_verification_email` handler.

        A rerun of the same job mails the same Message-ID (the job's idempotency key),
        so receivers can drop the copy.
        """
        await self.send_verification_email(job_user_id(job), message_id=job.idempotency_key)

    async def confirm_email(self, token: str, *, client: ClientInfo = NO_CLIENT) -> User:
        """Mark the token's user verified; `InvalidTokenError` for any unusable token."""
        now = self._clock.now()
        async with self._uow() as tx:
            user_id = await tx.one_time_tokens.consume(
                fingerprint(token), TokenPurpose.EMAIL_VERIFICATION, now
            )
            user = await tx.users.get(user_id) if user_id is not None else None
            if user is not None and user_id is not None:
                user = await mark_verified(tx, user, now=now, client=client, actor_id=user_id)
                await tx.commit()
                return user
        await record_alone(
            self._uow,
            identity_entry(
                IdentityAction.EMAIL_VERIFIED,
                now=now,
                client=client,
                outcome=AuditOutcome.FAILURE,
                reason="invalid_token",
            ),
        )
        raise InvalidTokenError()


async def mark_verified(
    tx: IdentityUnitOfWork,
    user: User,
    *,
    now: datetime,
    client: ClientInfo,
    actor_id: int | None,
    by: str | None = None,
) -> User:
    """In `tx`: the user's email verified, their outstanding verification links ended,
    and the verification audited (by `actor_id`; `by` names who, e.g. "operator"); the
    caller commits."""
    user_id = user.id
    assert user_id is not None
    if not user.email_verified:
        user = await tx.users.update(user.copy(email_verified=True))
    await tx.one_time_tokens.invalidate_for_user(user_id, TokenPurpose.EMAIL_VERIFICATION, now)
    entry = identity_entry(
        IdentityAction.EMAIL_VERIFIED, now=now, client=client, actor_id=actor_id, user_id=user_id
    )
    if by is not None:
        entry = replace(entry, details={**entry.details, "by": by})
    await tx.audit.record(entry)
    return user
