"""Logging in and out, and the browser sessions that result."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn

from core.audit.model import AuditOutcome, DetailValue
from core.identity.auditing import IdentityAction, identity_entry, record_alone
from core.identity.callers import (
    NO_LIMIT_READ,
    CallerReader,
    LimitRead,
    TieredLimit,
    caller_user,
)
from core.identity.errors import InvalidCredentialsError, InvalidEmailError, SessionNotFoundError
from core.identity.model import BrowserSession, Email, User
from core.identity.policy import SessionPolicy
from core.identity.ports import IdentityUnitOfWorkFactory, PasswordHasher, SessionStore
from core.identity.revocation import end_all_tokens
from core.identity.throttle import LoginThrottle
from core.identity.user_cache import CachedUsers
from core.shared.clock import Clock
from core.shared.context import NO_CLIENT, ClientInfo
from core.shared.hashing import fingerprint
from core.shared.ids import TokenGenerator

SESSION_TOKEN_BYTES = 32  # 256 bits


@dataclass(frozen=True, slots=True)
class LoginResult:
    user: User
    session: BrowserSession
    token: str  # the raw session token: goes into the cookie, never into a store or log


@dataclass(frozen=True, slots=True)
class Authenticated:
    user: User
    session: BrowserSession
    # The general rate limit, when `authenticate` was asked to count it (see `callers`).
    limit: LimitRead = NO_LIMIT_READ


class AuthenticationService:
    """Rules for browser sessions.

    - Unknown email, malformed email and wrong password fail the same way
      (`InvalidCredentialsError`) after the same hashing work.
    - Login always issues a new session token; a token presented at login is ended, so a
      pre-login id is dead afterwards (no session fixation).
    - A session ends at its absolute lifetime or after the idle timeout, whichever comes
      first; activity is recorded at most once per `touch_interval_seconds`.
    - Sessions of deleted or deactivated users are dead, and such users cannot log in
      (a deactivated one with the right password gets the same `InvalidCredentialsError`,
      audited with the reason `deactivated`).
    - Logout-all also ends every bearer token of the user (`revocation.end_all_tokens`).
    - Users can see and end only their own sessions; another user's session id is
      answered exactly like a missing one.
    - Credential checks are throttled per account and per client address before any
      hashing (`throttle.LoginThrottle`); a throttled check raises `LoginThrottledError`.
    - Logins (failed ones too), logouts and revocations are audited with the client's
      address and user agent. A failed login is audited in a transaction of its own and
      its answer does not change; a session whose audit entry cannot be written is
      ended again, so no session exists without its entry.
    """

    def __init__(
        self,
        uow: IdentityUnitOfWorkFactory,
        sessions: SessionStore,
        hasher: PasswordHasher,
        tokens: TokenGenerator,
        clock: Clock,
        policy: SessionPolicy,
        throttle: LoginThrottle,
        users: CachedUsers,
        callers: CallerReader,
    ) -> None:
        self._uow = uow
        # The per-request read: session, cached user and general limit together where
        # the stores allow; then the user cache-aside (forgotten on every commit).
        self._callers = callers
        self._users = users
        self._throttle = throttle
        self._sessions = sessions
        self._hasher = hasher
        self._tokens = tokens
        self._clock = clock
        self._policy = policy
        self._dummy_hash: str | None = None
        self._dummy_lock = asyncio.Lock()

    async def login(
        self,
        email: str,
        password: str,
        *,
        client: ClientInfo = NO_CLIENT,
        previous_token: str | None = None,
    ) -> LoginResult:
        user = await self.verify_credentials(email, password, client=client)
        return await self.start_session_for(user, client=client, previous_token=previous_token)

    async def start_session_for(
        self,
        user: User,
        *,
        client: ClientInfo = NO_CLIENT,
        previous_token: str | None = None,
        **details: DetailValue,
    ) -> LoginResult:
        """Log in a user another rule has already authenticated (a password, an OAuth
        provider): end `previous_token`'s session, start a new one, audit the login with
        `details` (how the user proved who they are). No session outlives a failed audit.
        A deactivated account gets no session (`InvalidCredentialsError`)."""
        if not user.is_active:
            raise InvalidCredentialsError()
        if previous_token:
            await self._sessions.delete(fingerprint(previous_token))
        result = await self._start_session(user, ip=client.ip, user_agent=client.user_agent)
        extra: dict[str, Any] = dict(details)  # checked by the audit guard, like any detail
        try:
            await record_alone(
                self._uow,
                identity_entry(
                    IdentityAction.LOGIN,
                    now=result.session.created_at,
                    client=client,
                    actor_id=user.id,
                    session_id=result.session.id,
                    **extra,
                ),
            )
        except BaseException:
            # An unaudited session must not outlive the failed request.
            await self._sessions.delete(result.session.token_hash)
            raise
        return result

    async def verify_credentials(
        self,
        email: str,
        password: str,
        *,
        client: ClientInfo = NO_CLIENT,
        action: IdentityAction = IdentityAction.LOGIN,
    ) -> User:
        """Return the active user these credentials belong to, or raise the one error.

        A failure is audited as a failed `action` (with the account, when the email names
        one) before the error is raised, after the same work in every case.
        """
        try:
            address: Email | None = Email(email)
        except InvalidEmailError:
            address = None
        # Keyed on the typed text, valid or not: a malformed address is throttled too.
        await self._throttle.check(email, client.ip)
        user = None
        if address is not None:
            async with self._uow(read_only=True) as uow:
                user = await uow.users.get_by_email(address)
        if user is None:
            # Same work as a real check, so timing does not tell which accounts exist.
            await self._hasher.verify(await self._dummy_password_hash(), password)
            await self._login_failed(None, "unknown_account", client, action)
        if not await self._hasher.verify(user.password_hash, password):
            await self._login_failed(user.id, "wrong_password", client, action)
        if not user.is_active:
            # After the password check, and the same answer: the refusal tells nothing
            # to someone without the password; the audit entry tells support why.
            await self._login_failed(user.id, "deactivated", client, action)
        if self._hasher.needs_rehash(user.password_hash):
            user = await self._rehash(user, password)
        return user

    async def authenticate(
        self, token: str, limit: TieredLimit | None = None
    ) -> Authenticated | None:
        """The user and session behind a session token, or None for anything not live.

        With `limit`, the caller's general rate limit is counted in the same read where
        the stores allow it (`Authenticated.limit`)."""
        token_hash = fingerprint(token)
        read = await self._callers.read_session(token_hash, limit)
        session = read.session
        if session is None:
            return None
        now = self._clock.now()
        if session.is_expired(now):
            await self._sessions.delete(token_hash)
            return None
        user = await caller_user(self._users, read)
        if user is None:
            await self._sessions.delete(token_hash)
            return None
        if (now - session.last_seen_at) >= timedelta(seconds=self._policy.touch_interval_seconds):
            session.last_seen_at = now
            await self._sessions.touch(token_hash, now, session.ttl_seconds(now))
        return Authenticated(user=user, session=session, limit=LimitRead.of(read))

    async def logout(self, token: str, *, client: ClientInfo = NO_CLIENT) -> None:
        token_hash = fingerprint(token)
        session = await self._sessions.get(token_hash)
        if await self._sessions.delete(token_hash) and session is not None:
            await record_alone(
                self._uow,
                identity_entry(
                    IdentityAction.LOGOUT,
                    now=self._clock.now(),
                    client=client,
                    actor_id=session.user_id,
                    session_id=session.id,
                ),
            )

    async def logout_all(
        self,
        user_id: int,
        *,
        keep_token: str | None = None,
        keep_token_family: str | None = None,
        client: ClientInfo = NO_CLIENT,
    ) -> int:
        """End every session and every bearer token of the user, except the session
        holding `keep_token` and the refresh tokens of `keep_token_family` if given.

        Access tokens all end, the caller's too (a kept family refreshes once)."""
        keep = fingerprint(keep_token) if keep_token else None
        async with self._uow() as tx:
            await end_all_tokens(tx, user_id, self._clock, keep_family=keep_token_family)
            await tx.commit()
        count = await self._sessions.delete_all_for_user(user_id, keep_token_hash=keep)
        await record_alone(
            self._uow,
            identity_entry(
                IdentityAction.LOGOUT_ALL,
                now=self._clock.now(),
                client=client,
                actor_id=user_id,
                user_id=user_id,
                count=count,
                kept_current=keep is not None or keep_token_family is not None,
            ),
        )
        return count

    async def list_sessions(self, user_id: int) -> list[BrowserSession]:
        now = self._clock.now()
        return [s for s in await self._sessions.list_for_user(user_id) if not s.is_expired(now)]

    async def revoke_session(
        self, user_id: int, session_id: int, *, client: ClientInfo = NO_CLIENT
    ) -> None:
        if not await self._sessions.delete_for_user(user_id, session_id):
            raise SessionNotFoundError()
        await record_alone(
            self._uow,
            identity_entry(
                IdentityAction.SESSION_REVOKED,
                now=self._clock.now(),
                client=client,
                actor_id=user_id,
                session_id=session_id,
            ),
        )

    async def _start_session(
        self, user: User, *, ip: str | None, user_agent: str | None
    ) -> LoginResult:
        assert user.id is not None
        now = self._clock.now()
        token = self._tokens.token(SESSION_TOKEN_BYTES)
        session = BrowserSession(
            token_hash=fingerprint(token),
            user_id=user.id,
            csrf_token=self._tokens.token(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(seconds=self._policy.absolute_lifetime_seconds),
            idle_timeout_seconds=self._policy.idle_timeout_seconds,
            ip=ip,
            user_agent=(user_agent or "")[:512] or None,
        )
        stored = await self._sessions.create(session, now)
        return LoginResult(user=user, session=stored, token=token)

    async def _login_failed(
        self,
        user_id: int | None,
        reason: str,
        client: ClientInfo,
        action: IdentityAction = IdentityAction.LOGIN,
    ) -> NoReturn:
        await record_alone(
            self._uow,
            identity_entry(
                action,
                now=self._clock.now(),
                client=client,
                user_id=user_id,
                outcome=AuditOutcome.FAILURE,
                reason=reason,
            ),
        )
        raise InvalidCredentialsError()

    async def _rehash(self, user: User, password: str) -> User:
        new_hash = await self._hasher.hash(password)
        async with self._uow() as uow:
            current = await uow.users.get(user.id) if user.id is not None else None
            if current is None or current.password_hash != user.password_hash:
                return user  # changed meanwhile: leave the newer hash alone
            updated = await uow.users.update(current.copy(password_hash=new_hash))
            await uow.commit()
        return updated

    async def _dummy_password_hash(self) -> str:
        if self._dummy_hash is None:
            async with self._dummy_lock:
                if self._dummy_hash is None:
                    self._dummy_hash = await self._hasher.hash(self._tokens.token(16))
        return self._dummy_hash
