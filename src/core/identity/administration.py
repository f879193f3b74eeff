"""What operators do to accounts (the CLI, the admin panel): deactivate and reactivate,
verify an email, end every session, create a superuser."""

from __future__ import annotations

import re

from core.identity.auditing import IdentityAction, identity_entry, record_alone
from core.identity.errors import (
    EmailTakenError,
    SelfDeactivationError,
    UsernameTakenError,
    UserNotFoundError,
)
from core.identity.model import Email, User, Username
from core.identity.passwords import PasswordPolicy
from core.identity.ports import (
    IdentityUnitOfWork,
    IdentityUnitOfWorkFactory,
    PasswordHasher,
    SessionStore,
)
from core.identity.revocation import end_all_tokens
from core.identity.verification import mark_verified
from core.shared.clock import Clock
from core.shared.context import NO_CLIENT, ClientInfo
from core.shared.errors import ConflictError

# "ada" for ada@example.com, then "ada-2", "ada-3"... while taken (deleted accounts keep
# theirs); this many tries, then a clear error asking for `--username`.
USERNAME_ATTEMPTS = 100
USERNAME_MAX_LENGTH = 32
USERNAME_MIN_LENGTH = 3
_NOT_IN_USERNAMES = re.compile(r"[^A-Za-z0-9_.-]+")


def username_from_email(email: Email) -> Username:
    """A valid username from the email's local part ("ada.l+x@..." -> "ada.l-x")."""
    local = email.value.split("@", 1)[0]
    cleaned = _NOT_IN_USERNAMES.sub("-", local).lstrip("_.-")[:USERNAME_MAX_LENGTH]
    if not cleaned:
        cleaned = "admin"
    elif len(cleaned) < USERNAME_MIN_LENGTH:
        cleaned = f"{cleaned}-admin"
    return Username(cleaned)


def numbered(base: Username, number: int) -> Username:
    """`base` with `-number`, shortened so the result is still a valid username."""
    suffix = f"-{number}"
    stem = base.value[: USERNAME_MAX_LENGTH - len(suffix)].rstrip("_.-") or "admin"
    return Username(f"{stem}{suffix}")


class UserAdministration:
    """Operators' changes to accounts. Every change is audited with the operator as the
    actor (`actor_id`, None for the command line) and the account as the target, in the
    transaction that makes it; every write goes through the users repository, so the
    user cache forgets the account on commit (`InvalidatingUnitOfWorkFactory`).

    - Deactivating keeps the account and its data but ends every browser session and
      every bearer token (access tokens by the user's cut-off, refresh tokens revoked):
      nobody can sign in to it or use a token of it until it is reactivated. It is
      idempotent: an account already deactivated is not changed or audited again, but
      its sessions are ended again (a retry after the session store failed finishes the
      job). Operators cannot deactivate their own account (`SelfDeactivationError`).
    - Reactivating lets the account sign in again; tokens ended stay ended.
    - Verifying an email marks it verified and ends outstanding verification links.
    - Ending sessions ends every session and every token, and says how many sessions.
    - A superuser is created with the registration rules (email, username, password
      policy, hashing off the event loop), verified; an email already registered
      (deleted accounts included) is refused, never promoted.
    Deleted and unknown accounts raise `UserNotFoundError`.
    """

    def __init__(
        self,
        uow: IdentityUnitOfWorkFactory,
        sessions: SessionStore,
        hasher: PasswordHasher,
        clock: Clock,
        password_policy: PasswordPolicy,
    ) -> None:
        self._uow = uow
        self._sessions = sessions
        self._hasher = hasher
        self._clock = clock
        self._password_policy = password_policy

    async def deactivate(
        self,
        user_id: int,
        *,
        actor_id: int | None,
        reason: str = "",
        client: ClientInfo = NO_CLIENT,
    ) -> User:
        if actor_id is not None and actor_id == user_id:
            raise SelfDeactivationError()
        async with self._uow() as tx:
            user = await _locked(tx, user_id)
            if user.deactivated_at is None:
                now = self._clock.now()
                user = await tx.users.update(user.copy(deactivated_at=now))
                revoked = await end_all_tokens(tx, user_id, self._clock)
                await tx.audit.record(
                    identity_entry(
                        IdentityAction.DEACTIVATED,
                        now=now,
                        client=client,
                        actor_id=actor_id,
                        user_id=user_id,
                        reason=reason or None,
                        revoked=revoked,  # refresh tokens
                    )
                )
                await tx.commit()
        # After the commit: from here on every session of the user is refused anyway
        # (the user is inactive), so a store failure below leaves nothing usable.
        await self._sessions.delete_all_for_user(user_id)
        return user

    async def reactivate(
        self, user_id: int, *, actor_id: int | None, client: ClientInfo = NO_CLIENT
    ) -> User:
        async with self._uow() as tx:
            user = await _locked(tx, user_id)
            if user.deactivated_at is None:
                return user
            user = await tx.users.update(user.copy(deactivated_at=None))
            await tx.audit.record(
                identity_entry(
                    IdentityAction.REACTIVATED,
                    now=self._clock.now(),
                    client=client,
                    actor_id=actor_id,
                    user_id=user_id,
                )
            )
            await tx.commit()
        return user

    async def verify_email(
        self, user_id: int, *, actor_id: int | None, client: ClientInfo = NO_CLIENT
    ) -> User:
        async with self._uow() as tx:
            user = await _locked(tx, user_id)
            if user.email_verified:
                return user
            user = await mark_verified(
                tx, user, now=self._clock.now(), client=client, actor_id=actor_id, by="operator"
            )
            await tx.commit()
        return user

    async def end_sessions(
        self, user_id: int, *, actor_id: int | None, client: ClientInfo = NO_CLIENT
    ) -> int:
        """End every browser session and every bearer token of the user; returns how
        many sessions ended."""
        async with self._uow() as tx:
            await _locked(tx, user_id)
            revoked = await end_all_tokens(tx, user_id, self._clock)
            await tx.commit()
        count = await self._sessions.delete_all_for_user(user_id)
        await record_alone(
            self._uow,
            identity_entry(
                IdentityAction.SESSIONS_ENDED,
                now=self._clock.now(),
                client=client,
                actor_id=actor_id,
                user_id=user_id,
                count=count,  # sessions
                revoked=revoked,  # refresh tokens
            ),
        )
        return count

    async def create_superuser(
        self, email: str, password: str, *, username: str | None = None
    ) -> User:
        """A verified superuser. `username` defaults to the email's local part, made
        unique; an explicit one that is taken is refused (`UsernameTakenError`)."""
        address = Email(email)
        wanted = Username(username) if username is not None else None
        self._password_policy.check(
            password, email=str(address), username=str(wanted) if wanted else None
        )
        async with self._uow(read_only=True) as tx:
            # Friendly early answers; the unique constraints decide races.
            if await tx.users.get_by_email(address, include_deleted=True) is not None:
                raise EmailTakenError(f"An account with the email {address} already exists.")
            if wanted is None:
                name = await _free_username(tx, username_from_email(address))
            elif await tx.users.get_by_username(wanted, include_deleted=True) is not None:
                raise UsernameTakenError(f"The username {wanted} is taken.")
            else:
                name = wanted
        if wanted is None:
            # The derived name was not checked against the password above.
            self._password_policy.check(password, email=str(address), username=str(name))
        password_hash = await self._hasher.hash(password)
        async with self._uow() as tx:
            user = await tx.users.add(
                User(
                    email=address,
                    username=name,
                    password_hash=password_hash,
                    is_superuser=True,
                    email_verified=True,
                )
            )
            assert user.id is not None
            await tx.audit.record(
                identity_entry(
                    IdentityAction.SUPERUSER_CREATED,
                    now=self._clock.now(),
                    client=NO_CLIENT,
                    user_id=user.id,
                )
            )
            await tx.commit()
        return user


async def _locked(tx: IdentityUnitOfWork, user_id: int) -> User:
    user = await tx.users.lock(user_id)
    if user is None:
        raise UserNotFoundError()
    return user


async def _free_username(tx: IdentityUnitOfWork, base: Username) -> Username:
    candidate = base
    for number in range(2, USERNAME_ATTEMPTS + 2):
        if await tx.users.get_by_username(candidate, include_deleted=True) is None:
            return candidate
        candidate = numbered(base, number)
    raise ConflictError(f"The usernames {base}, {base}-2 ... are taken; choose another.")
