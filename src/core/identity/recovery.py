"""Getting back into an account: password reset by mail."""

from __future__ import annotations

from datetime import datetime
from typing import NoReturn

from core.audit.model import AuditOutcome
from core.identity.auditing import IdentityAction, identity_entry, record_alone
from core.identity.errors import InvalidEmailError, InvalidTokenError
from core.identity.model import Email, TokenPurpose, User
from core.identity.one_time_tokens import burst_key, job_user_id, mail_token_link
from core.identity.passwords import PasswordPolicy
from core.identity.policy import AccountLinkPolicy
from core.identity.ports import IdentityUnitOfWorkFactory, PasswordHasher, SessionStore
from core.identity.revocation import end_all_tokens
from core.notifications.model import EmailCategory
from core.notifications.service import NotificationService, queue_email
from core.platform.jobs import Job, JobQueue
from core.shared.clock import Clock
from core.shared.context import NO_CLIENT, ClientInfo
from core.shared.hashing import fingerprint
from core.shared.ids import TokenGenerator

SEND_PASSWORD_RESET_JOB = "identity.send_password_reset"
PASSWORD_RESET_TEMPLATE = "password_reset"
PASSWORD_CHANGED_TEMPLATE = "password_changed"


async def queue_password_changed_mail(jobs: JobQueue, user: User, now: datetime) -> None:
    """Queue the "your password was changed" security mail in the caller's unit of work.

    One mail per change: the key carries the time of the change to the microsecond.
    """
    assert user.id is not None
    await queue_email(
        jobs,
        user_id=user.id,
        to=str(user.email),
        template=PASSWORD_CHANGED_TEMPLATE,
        context={"username": str(user.username)},
        category=EmailCategory.SECURITY,
        idempotency_key=(
            f"{PASSWORD_CHANGED_TEMPLATE}:{user.id}:{int(now.timestamp() * 1_000_000)}"
        ),
    )


class PasswordResetService:
    """Rules for resetting a forgotten password.

    - Asking for a reset always succeeds the same way, and does the same database work
      (one write transaction with an audit entry), whether or not the email belongs to
      an active account: nobody can learn which addresses have accounts. Only for an
      active account is a job queued (`identity.send_password_reset`, `{user_id}`),
      folded with the other requests of the same window, so bursts send one mail.
    - The token is made when the job runs, so no usable token ever sits in the outbox;
      only its fingerprint is stored. 256 random bits, single use, valid for
      `reset_lifetime_seconds`. The mail is security mail (always sent).
    - Resetting needs a usable reset token and a new password that passes the policy. A
      weak password is refused without using the token up, so the user can try again.
      Unknown, used, expired or foreign-purpose tokens all get `InvalidTokenError`.
    - A reset stores the new hash, ends the user's other reset tokens, marks the email
      verified (the link reached the mailbox, which is what verification proves), queues
      the "password changed" mail, ends every bearer token and, after commit, every
      session of the user.
    - Every request and reset, failed ones included, is audited; no audit entry holds
      the email asked about, the token or the password.
    """

    def __init__(
        self,
        uow: IdentityUnitOfWorkFactory,
        sessions: SessionStore,
        hasher: PasswordHasher,
        notifications: NotificationService,
        tokens: TokenGenerator,
        clock: Clock,
        password_policy: PasswordPolicy,
        links: AccountLinkPolicy,
    ) -> None:
        self._uow = uow
        self._sessions = sessions
        self._hasher = hasher
        self._notifications = notifications
        self._tokens = tokens
        self._clock = clock
        self._password_policy = password_policy
        self._links = links

    async def request_password_reset(self, email: str, *, client: ClientInfo = NO_CLIENT) -> None:
        """Queue a reset mail if `email` is an active account's; answer the same anyway."""
        now = self._clock.now()
        try:
            address: Email | None = Email(email)
        except InvalidEmailError:
            address = None  # treated exactly like an unknown address
        async with self._uow() as tx:
            user = await tx.users.get_by_email(address) if address is not None else None
            if user is not None and user.id is not None:
                await tx.jobs.enqueue(
                    SEND_PASSWORD_RESET_JOB,
                    {"user_id": user.id},
                    idempotency_key=burst_key(
                        PASSWORD_RESET_TEMPLATE, user.id, now, self._links.request_window_seconds
                    ),
                )
            await tx.audit.record(
                identity_entry(
                    IdentityAction.PASSWORD_RESET_REQUESTED,
                    now=now,
                    client=client,
                    user_id=user.id if user is not None else None,
                    known_account=user is not None,
                )
            )
            await tx.commit()

    async def send_password_reset(self, user_id: int, *, message_id: str | None = None) -> bool:
        """Issue a reset token and mail its link now (the job's work).

        False, and nothing sent, when the account is gone. A retry after a failed send
        issues a fresh token; the unsent one just expires.
        """
        return await mail_token_link(
            self._uow,
            self._tokens,
            self._notifications,
            user_id=user_id,
            purpose=TokenPurpose.PASSWORD_RESET,
            now=self._clock.now(),
            lifetime_seconds=self._links.reset_lifetime_seconds,
            template=PASSWORD_RESET_TEMPLATE,
            link=self._links.reset_link,
            message_id=message_id,
        )

    async def handle_send_password_reset(self, job: Job) -> None:
        """The `identity.send_password_reset` handler (same Message-ID on a rerun)."""
        await self.send_password_reset(job_user_id(job), message_id=job.idempotency_key)

    async def reset_password(
        self, token: str, new_password: str, *, client: ClientInfo = NO_CLIENT
    ) -> None:
        """Set a new password with a reset token; every session of the user ends."""
        token_hash = fingerprint(token)
        async with self._uow(read_only=True) as tx:
            found = await tx.one_time_tokens.find_usable(
                token_hash, TokenPurpose.PASSWORD_RESET, self._clock.now()
            )
            user = await tx.users.get(found.user_id) if found is not None else None
        if user is None or user.id is None:
            await self._refuse(client)
        # Checked before the token is used, so a weak password costs the user nothing.
        self._password_policy.check(
            new_password, email=str(user.email), username=str(user.username)
        )
        new_hash = await self._hasher.hash(new_password)
        now = self._clock.now()
        async with self._uow() as tx:
            # The conditional UPDATE decides: of two racing resets, one wins.
            consumed_by = await tx.one_time_tokens.consume(
                token_hash, TokenPurpose.PASSWORD_RESET, now
            )
            current = await tx.users.get(user.id) if consumed_by == user.id else None
            if current is not None:
                await tx.users.update(current.copy(password_hash=new_hash, email_verified=True))
                await tx.one_time_tokens.invalidate_for_user(
                    user.id, TokenPurpose.PASSWORD_RESET, now
                )
                await end_all_tokens(tx, user.id, self._clock)
                await tx.audit.record(
                    identity_entry(
                        IdentityAction.PASSWORD_RESET,
                        now=now,
                        client=client,
                        actor_id=user.id,
                        user_id=user.id,
                    )
                )
                await queue_password_changed_mail(tx.jobs, current, now)
                await tx.commit()
        if current is None:
            await self._refuse(client)
        # After commit: the new password is in place before anyone is signed out.
        await self._sessions.delete_all_for_user(user.id)

    async def _refuse(self, client: ClientInfo) -> NoReturn:
        await record_alone(
            self._uow,
            identity_entry(
                IdentityAction.PASSWORD_RESET,
                now=self._clock.now(),
                client=client,
                outcome=AuditOutcome.FAILURE,
                reason="invalid_token",
            ),
        )
        raise InvalidTokenError()
