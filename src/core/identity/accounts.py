"""Registering, reading, changing and deleting one's own account."""

from __future__ import annotations

from typing import NoReturn

from core.audit.model import AuditOutcome
from core.identity.auditing import IdentityAction, identity_entry, record_alone
from core.identity.errors import (
    EmailTakenError,
    UsernameTakenError,
    UserNotFoundError,
    WeakPasswordError,
    WrongPasswordError,
)
from core.identity.model import Email, TokenPurpose, User, Username
from core.identity.passwords import PasswordPolicy
from core.identity.ports import (
    IdentityUnitOfWork,
    IdentityUnitOfWorkFactory,
    PasswordHasher,
    SessionStore,
)
from core.identity.recovery import queue_password_changed_mail
from core.identity.revocation import end_all_tokens
from core.identity.throttle import LoginThrottle
from core.notifications.model import EmailCategory
from core.notifications.service import queue_email
from core.platform.jobs import JobQueue
from core.shared.clock import Clock
from core.shared.context import NO_CLIENT, ClientInfo
from core.shared.hashing import fingerprint

WELCOME_TEMPLATE = "welcome"


async def queue_welcome_mail(jobs: JobQueue, user: User) -> None:
    """Queue the welcome mail of a new account in the transaction that creates it (once
    per account: the idempotency key is the user id)."""
    assert user.id is not None
    await queue_email(
        jobs,
        user_id=user.id,
        to=str(user.email),
        template=WELCOME_TEMPLATE,
        context={"username": str(user.username)},
        category=EmailCategory.ONBOARDING,
        idempotency_key=f"{WELCOME_TEMPLATE}:{user.id}",
    )


class AccountService:
    """Rules for accounts.

    - Emails are unique case-insensitively, usernames exactly; a deleted account keeps
      its email and username (they stay taken, so history stays unambiguous).
    - Passwords follow the `PasswordPolicy` and are stored only as hashes.
    - Users may change their username only; tier, superuser, verification and the like
      are not theirs to write.
    - Deleting an account is soft, needs the password, and ends every session, every
      bearer token and every outstanding verification or reset link.
    - Changing the password needs the current one, ends every other session, every
      bearer token (but the caller's refresh family, `keep_token_family`) and every
      outstanding reset link, and queues the "password changed" security mail.
    - Registration queues the welcome mail (onboarding: preferences may suppress it) in
      the same transaction, so it goes out exactly when the account exists.
    - The password that confirms a deletion or a change counts as a sign-in attempt
      (`throttle.LoginThrottle`, before hashing): a stolen session cannot be used to
      guess the password faster than the login form allows.
    - Registration, deletion and password changes are audited with the change; a wrong
      password on deletion or change is audited as a failure on its own.
    """

    def __init__(
        self,
        uow: IdentityUnitOfWorkFactory,
        sessions: SessionStore,
        hasher: PasswordHasher,
        clock: Clock,
        password_policy: PasswordPolicy,
        throttle: LoginThrottle,
    ) -> None:
        self._uow = uow
        self._throttle = throttle
        self._sessions = sessions
        self._hasher = hasher
        self._clock = clock
        self._password_policy = password_policy

    async def register(
        self, email: str, username: str, password: str, *, client: ClientInfo = NO_CLIENT
    ) -> User:
        address = Email(email)
        name = Username(username)
        self._password_policy.check(password, email=str(address), username=str(name))
        async with self._uow(read_only=True) as uow:
            # Friendly early answers; the unique constraints decide races.
            if await uow.users.get_by_email(address, include_deleted=True) is not None:
                raise EmailTakenError()
            if await uow.users.get_by_username(name, include_deleted=True) is not None:
                raise UsernameTakenError()
        password_hash = await self._hasher.hash(password)
        async with self._uow() as uow:
            user = await uow.users.add(
                User(email=address, username=name, password_hash=password_hash)
            )
            assert user.id is not None
            await uow.audit.record(
                identity_entry(
                    IdentityAction.REGISTERED,
                    now=self._clock.now(),
                    client=client,
                    actor_id=user.id,
                    user_id=user.id,
                )
            )
            await queue_welcome_mail(uow.jobs, user)
            await uow.commit()
        return user

    async def get(self, user_id: int) -> User:
        async with self._uow(read_only=True) as uow:
            user = await uow.users.get(user_id)
        if user is None:
            raise UserNotFoundError()
        return user

    async def get_by_email(self, email: str) -> User:
        """The account with this address, active or deactivated (operators' tools;
        `UserNotFoundError` when none or deleted)."""
        async with self._uow(read_only=True) as uow:
            user = await uow.users.get_by_email(Email(email))
        if user is None:
            raise UserNotFoundError()
        return user

    async def update_profile(self, user_id: int, *, username: str | None = None) -> User:
        async with self._uow() as uow:
            user = await uow.users.get(user_id)
            if user is None:
                raise UserNotFoundError()
            if username is not None and username != str(user.username):
                name = Username(username)
                existing = await uow.users.get_by_username(name, include_deleted=True)
                if existing is not None and existing.id != user.id:
                    raise UsernameTakenError()
                user = await uow.users.update(user.copy(username=name))
                await uow.commit()
        return user

    async def set_tier(
        self,
        user_id: int,
        tier_code: str,
        *,
        actor_id: int | None = None,
        reason: str = "",
        client: ClientInfo = NO_CLIENT,
    ) -> User:
        """Put the user on `tier_code` (billing decides which tiers exist and who gets
        one; identity keeps the code and forgets the cached user, as for any change).
        Audited as `account.tier_changed` with the old and new codes, in the same
        transaction; a user already on the tier is returned unchanged, unaudited."""
        async with self._uow() as uow:
            user = await self.set_tier_in(
                uow, user_id, tier_code, actor_id=actor_id, reason=reason, client=client
            )
            await uow.commit()
        return user

    async def set_tier_in(
        self,
        uow: IdentityUnitOfWork,
        user_id: int,
        tier_code: str,
        *,
        actor_id: int | None = None,
        reason: str = "",
        client: ClientInfo = NO_CLIENT,
    ) -> User:
        """`set_tier` inside the caller's unit of work (the caller commits): for a change
        that must commit together with something else, such as a payment event. The
        caller's unit must forget what it writes, as the units this service opens do."""
        user = await uow.users.lock(user_id)
        if user is None:
            raise UserNotFoundError()
        if user.tier_code == tier_code:
            return user
        previous = user.tier_code
        user = await uow.users.update(user.copy(tier_code=tier_code))
        await uow.audit.record(
            identity_entry(
                IdentityAction.TIER_CHANGED,
                now=self._clock.now(),
                client=client,
                actor_id=actor_id,
                user_id=user_id,
                previous=previous,
                tier=tier_code,
                reason=reason or None,
            )
        )
        return user

    async def delete_account(
        self, user_id: int, password: str, *, client: ClientInfo = NO_CLIENT
    ) -> None:
        user = await self.get(user_id)
        await self._throttle.check(user.email, client.ip)
        if not await self._hasher.verify(user.password_hash, password):
            await self._wrong_password(IdentityAction.DELETED, user_id, client)
        now = self._clock.now()
        async with self._uow() as uow:
            await uow.users.soft_delete(user_id, now)
            for purpose in TokenPurpose:
                await uow.one_time_tokens.invalidate_for_user(user_id, purpose, now)
            await end_all_tokens(uow, user_id, self._clock)
            await uow.audit.record(
                identity_entry(
                    IdentityAction.DELETED,
                    now=now,
                    client=client,
                    actor_id=user_id,
                    user_id=user_id,
                )
            )
            await uow.commit()
        await self._sessions.delete_all_for_user(user_id)

    async def change_password(
        self,
        user_id: int,
        current_password: str,
        new_password: str,
        *,
        keep_session_token: str | None = None,
        keep_token_family: str | None = None,
        client: ClientInfo = NO_CLIENT,
    ) -> None:
        user = await self.get(user_id)
        await self._throttle.check(user.email, client.ip)
        if not await self._hasher.verify(user.password_hash, current_password):
            await self._wrong_password(IdentityAction.PASSWORD_CHANGED, user_id, client)
        if new_password == current_password:
            raise WeakPasswordError(
                "The new password must differ from the current one.", field="new_password"
            )
        self._password_policy.check(
            new_password, email=str(user.email), username=str(user.username)
        )
        new_hash = await self._hasher.hash(new_password)
        now = self._clock.now()
        async with self._uow() as uow:
            current = await uow.users.get(user_id)
            if current is None:
                raise UserNotFoundError()
            await uow.users.update(current.copy(password_hash=new_hash))
            # A reset link mailed before the change must not undo it.
            await uow.one_time_tokens.invalidate_for_user(user_id, TokenPurpose.PASSWORD_RESET, now)
            # Every bearer token ends too, but the caller's refresh family if it is one.
            await end_all_tokens(uow, user_id, self._clock, keep_family=keep_token_family)
            await uow.audit.record(
                identity_entry(
                    IdentityAction.PASSWORD_CHANGED,
                    now=now,
                    client=client,
                    actor_id=user_id,
                    user_id=user_id,
                )
            )
            await queue_password_changed_mail(uow.jobs, current, now)
            await uow.commit()
        keep = fingerprint(keep_session_token) if keep_session_token else None
        await self._sessions.delete_all_for_user(user_id, keep_token_hash=keep)

    async def _wrong_password(
        self, action: IdentityAction, user_id: int, client: ClientInfo
    ) -> NoReturn:
        await record_alone(
            self._uow,
            identity_entry(
                action,
                now=self._clock.now(),
                client=client,
                actor_id=user_id,
                user_id=user_id,
                outcome=AuditOutcome.FAILURE,
                reason="wrong_password",
            ),
        )
        raise WrongPasswordError()
