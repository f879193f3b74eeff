"""Registering, reading, changing and deleting one's own account."""

from __future__ import annotations

from core.identity.errors import (
    EmailTakenError,
    UsernameTakenError,
    UserNotFoundError,
    WeakPasswordError,
    WrongPasswordError,
)
from core.identity.model import Email, User, Username
from core.identity.passwords import PasswordPolicy
from core.identity.ports import IdentityUnitOfWorkFactory, PasswordHasher, SessionStore
from core.shared.clock import Clock
from core.shared.hashing import fingerprint


class AccountService:
    """Rules for accounts.

    - Emails are unique case-insensitively, usernames exactly; a deleted account keeps
      its email and username (they stay taken, so history stays unambiguous).
    - Passwords follow the `PasswordPolicy` and are stored only as hashes.
    - Users may change their username only; tier, superuser, verification and the like
      are not theirs to write.
    - Deleting an account is soft, needs the password, and ends every session.
    - Changing the password needs the current one and ends every other session.
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

    async def register(self, email: str, username: str, password: str) -> User:
        address = Email(email).value
        name = Username(username).value
        self._password_policy.check(password, email=address, username=name)
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
            await uow.commit()
        return user

    async def get(self, user_id: int) -> User:
        async with self._uow(read_only=True) as uow:
            user = await uow.users.get(user_id)
        if user is None:
            raise UserNotFoundError()
        return user

    async def update_profile(self, user_id: int, *, username: str | None = None) -> User:
        async with self._uow() as uow:
            user = await uow.users.get(user_id)
            if user is None:
                raise UserNotFoundError()
            if username is not None and username != user.username:
                name = Username(username).value
                existing = await uow.users.get_by_username(name, include_deleted=True)
                if existing is not None and existing.id != user.id:
                    raise UsernameTakenError()
                user = await uow.users.update(user.copy(username=name))
                await uow.commit()
        return user

    async def delete_account(self, user_id: int, password: str) -> None:
        user = await self.get(user_id)
        if not await self._hasher.verify(user.password_hash, password):
            raise WrongPasswordError()
        async with self._uow() as uow:
            await uow.users.soft_delete(user_id, self._clock.now())
            await uow.commit()
        await self._sessions.delete_all_for_user(user_id)

    async def change_password(
        self,
        user_id: int,
        current_password: str,
        new_password: str,
        *,
        keep_session_token: str | None = None,
    ) -> None:
        user = await self.get(user_id)
        if not await self._hasher.verify(user.password_hash, current_password):
            raise WrongPasswordError()
        if new_password == current_password:
            raise WeakPasswordError(
                "The new password must differ from the current one.", field="new_password"
            )
        self._password_policy.check(new_password, email=user.email, username=user.username)
        new_hash = await self._hasher.hash(new_password)
        async with self._uow() as uow:
            current = await uow.users.get(user_id)
            if current is None:
                raise UserNotFoundError()
            await uow.users.update(current.copy(password_hash=new_hash))
            await uow.commit()
        keep = fingerprint(keep_session_token) if keep_session_token else None
        await self._sessions.delete_all_for_user(user_id, keep_token_hash=keep)
