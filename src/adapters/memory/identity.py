"""In-memory identity storage with the same transactional behaviour as the SQL adapter."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

from adapters.memory.audit import InMemoryAuditLog, InMemoryAuditState
from adapters.memory.jobs import InMemoryJobQueue, InMemoryJobStore
from adapters.memory.notifications import (
    InMemoryNotificationPreferencesRepository,
    InMemoryNotificationState,
)
from adapters.memory.oauth_identities import (
    InMemoryOAuthIdentityRepository,
    InMemoryOAuthIdentityState,
)
from adapters.memory.one_time_tokens import (
    InMemoryOneTimeTokenRepository,
    InMemoryOneTimeTokenState,
)
from adapters.memory.query import QueryEvaluator, dataclass_field_types
from adapters.memory.refresh_tokens import (
    InMemoryRefreshTokenRepository,
    InMemoryRefreshTokenState,
)
from core.audit.ports import AuditLog
from core.identity.errors import EmailTakenError, UsernameTakenError, UserNotFoundError
from core.identity.model import User
from core.identity.oauth_ports import OAuthIdentityRepository
from core.identity.ports import (
    IdentityUnitOfWork,
    IdentityUnitOfWorkFactory,
    OneTimeTokenRepository,
    RefreshTokenRepository,
    UserRepository,
)
from core.notifications.ports import (
    NotificationPreferencesRepository,
    NotificationsUnitOfWork,
    NotificationsUnitOfWorkFactory,
)
from core.platform.jobs import JobQueue
from core.shared.query import Condition, ListQuery, Operator, Page

# The password hash is never filtered or sorted on, as in the SQL adapter.
_USER_QUERIES = QueryEvaluator(
    {k: v for k, v in dataclass_field_types(User).items() if k != "password_hash"}, pk="id"
)


def _now() -> datetime:
    return datetime.now(UTC)


def _later_than(previous: datetime | None) -> datetime:
    # Memory is fast enough for two writes to share a microsecond; a change must still
    # move `updated_at` forward, as the database round trip guarantees for SQL.
    now = _now()
    if previous is not None and now <= previous:
        return previous + timedelta(microseconds=1)
    return now


def _normalise_email(email: str) -> str:
    return email.strip().lower()


@dataclass
class InMemoryIdentityState:
    """The committed data every unit of work of one factory shares."""

    users: dict[int, User] = field(default_factory=dict)
    next_user_id: int = 1
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    audit: InMemoryAuditState = field(default_factory=InMemoryAuditState)
    one_time_tokens: InMemoryOneTimeTokenState = field(default_factory=InMemoryOneTimeTokenState)
    refresh_tokens: InMemoryRefreshTokenState = field(default_factory=InMemoryRefreshTokenState)
    oauth_identities: InMemoryOAuthIdentityState = field(default_factory=InMemoryOAuthIdentityState)
    # Per-user locks held by `UserRepository.lock` until the unit of work ends (row locks).
    user_locks: dict[int, asyncio.Lock] = field(default_factory=dict)
    notifications: InMemoryNotificationState = field(default_factory=InMemoryNotificationState)
    # The outbox; shared with an `InMemoryOutbox` when a relay runs on it.
    jobs: InMemoryJobStore = field(default_factory=InMemoryJobStore)

    def allocate_user_id(self) -> int:
        # Like a database sequence: ids are never reused, even after a rollback.
        user_id = self.next_user_id
        self.next_user_id += 1
        return user_id


def _check_unique(user: User, others: dict[int, User]) -> None:
    for other in others.values():
        if other.id == user.id:
            continue
        if other.email == user.email:
            raise EmailTakenError()
        if other.username == user.username:
            raise UsernameTakenError()


class InMemoryUserRepository(UserRepository):
    """`UserRepository` over an `InMemoryIdentityState` (see the port for the contract).

    Changes are kept apart until the unit of work commits; reads see the committed users
    overlaid with this transaction's own changes. Email and username uniqueness is
    checked at `add`/`update` and again, atomically, at commit. Returns copies, so
    callers cannot change stored users by accident. `tokens_valid_after` only moves
    forward: `update` keeps the stored value, and commit keeps the later of the stored
    and the pending one. `lock` (and `end_tokens_before`) hold a per-user asyncio lock
    until the unit of work ends, as a row lock would.
    """

    def __init__(self, state: InMemoryIdentityState) -> None:
        self._state = state
        self._pending: dict[int, User] = {}
        self._held: set[int] = set()

    def _visible(self) -> dict[int, User]:
        return {**self._state.users, **self._pending}

    def _find(self, field_name: str, value: str, include_deleted: bool) -> User | None:
        matches = _USER_QUERIES.matcher(
            [Condition(field_name, Operator.EQ, value)], include_deleted=include_deleted
        )
        found = [user for user in self._visible().values() if matches(user)]
        return min(found, key=lambda user: user.id or 0).copy() if found else None

    async def add(self, user: User) -> User:
        now = _now()
        stored = user.copy(
            id=self._state.allocate_user_id(),
            email=_normalise_email(user.email),
            created_at=now,
            updated_at=now,
            tokens_valid_after=None,
        )
        _check_unique(stored, self._visible())
        self._pending[stored.id] = stored  # type: ignore[index]
        return stored.copy()

    async def get(self, user_id: int, *, include_deleted: bool = False) -> User | None:
        user = self._visible().get(user_id)
        if user is None or (user.deleted_at is not None and not include_deleted):
            return None
        return user.copy()

    async def get_by_email(self, email: str, *, include_deleted: bool = False) -> User | None:
        return self._find("email", _normalise_email(email), include_deleted)

    async def get_by_username(self, username: str, *, include_deleted: bool = False) -> User | None:
        return self._find("username", username, include_deleted)

    async def update(self, user: User) -> User:
        current = self._visible().get(user.id) if user.id is not None else None
        if current is None:
            raise UserNotFoundError()
        stored = user.copy(
            email=_normalise_email(user.email),
            created_at=current.created_at,
            updated_at=_later_than(current.updated_at),
            tokens_valid_after=current.tokens_valid_after,
        )
        _check_unique(stored, self._visible())
        self._pending[current.id] = stored  # type: ignore[index]
        return stored.copy()

    async def soft_delete(self, user_id: int, at: datetime) -> bool:
        current = self._visible().get(user_id)
        if current is None:
            return False
        if current.deleted_at is None:
            self._pending[user_id] = current.copy(
                deleted_at=at, updated_at=_later_than(current.updated_at)
            )
        return True

    async def list(self, query: ListQuery) -> Page[User]:
        page = _USER_QUERIES.page(self._visible().values(), query)
        return Page(
            items=[user.copy() for user in page.items],
            next_cursor=page.next_cursor,
            total=page.total,
        )

    async def end_tokens_before(self, user_id: int, at: datetime) -> bool:
        await self._hold(user_id)
        current = self._visible().get(user_id)
        if current is None:
            return False
        if current.tokens_valid_after is None or current.tokens_valid_after < at:
            self._pending[user_id] = current.copy(tokens_valid_after=at)
        return True

    async def lock(self, user_id: int) -> User | None:
        await self._hold(user_id)
        return await self.get(user_id)

    async def _hold(self, user_id: int) -> None:
        if user_id in self._held:
            return
        await self._state.user_locks.setdefault(user_id, asyncio.Lock()).acquire()
        self._held.add(user_id)

    def _release(self) -> None:
        for user_id in self._held:
            self._state.user_locks[user_id].release()
        self._held.clear()

    def _commit(self) -> None:
        """Apply the pending changes; the caller holds the state's lock."""
        merged = {**self._state.users, **self._pending}
        for user in self._pending.values():
            _check_unique(user, merged)
        for user_id, user in self._pending.items():
            stored = self._state.users.get(user_id)
            cutoff = stored.tokens_valid_after if stored is not None else None
            if cutoff is not None and (
                user.tokens_valid_after is None or user.tokens_valid_after < cutoff
            ):
                self._pending[user_id] = user.copy(tokens_valid_after=cutoff)
        self._state.users.update(self._pending)
        self._pending.clear()
        self._release()

    def _rollback(self) -> None:
        self._pending.clear()
        self._release()


class InMemoryUnitOfWork(IdentityUnitOfWork, NotificationsUnitOfWork):
    """A transaction over in-memory identity data (contract: the core `UnitOfWork`).

    Commit applies every pending change at once under the state's lock, or raises
    `EmailTakenError`/`UsernameTakenError` and applies nothing; leaving the block
    without commit discards the changes.
    """

    users: UserRepository
    audit: AuditLog
    one_time_tokens: OneTimeTokenRepository
    refresh_tokens: RefreshTokenRepository
    oauth_identities: OAuthIdentityRepository
    notification_preferences: NotificationPreferencesRepository
    jobs: JobQueue

    def __init__(self, state: InMemoryIdentityState) -> None:
        self._state = state
        self._jobs = InMemoryJobQueue(state.jobs)
        self.jobs = self._jobs
        self._users = InMemoryUserRepository(state)
        self.users = self._users
        self._audit = InMemoryAuditLog(state.audit)
        self.audit = self._audit
        self._one_time_tokens = InMemoryOneTimeTokenRepository(state.one_time_tokens)
        self.one_time_tokens = self._one_time_tokens
        self._refresh_tokens = InMemoryRefreshTokenRepository(state.refresh_tokens)
        self.refresh_tokens = self._refresh_tokens
        self._oauth_identities = InMemoryOAuthIdentityRepository(
            state.oauth_identities, self._user_exists
        )
        self.oauth_identities = self._oauth_identities
        self._notification_preferences = InMemoryNotificationPreferencesRepository(
            state.notifications, self._user_exists
        )
        self.notification_preferences = self._notification_preferences

    async def _user_exists(self, user_id: int) -> bool:
        # What the SQL foreign keys check: the user row exists (deleted or not), as
        # seen by this transaction.
        return await self._users.get(user_id, include_deleted=True) is not None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._users._rollback()
        self._audit._rollback()
        self._one_time_tokens._rollback()
        self._refresh_tokens._rollback()
        self._oauth_identities._rollback()
        self._notification_preferences._rollback()
        self._jobs._rollback()

    async def commit(self) -> None:
        async with self._state.lock:
            try:
                # The checks that can fail come first and apply nothing when they do
                # (links, then users), so the others are never applied alone.
                self._oauth_identities._check()
                self._users._commit()
            except Exception:
                # As in SQL, a failed commit ends the transaction: nothing survives it.
                self._users._rollback()
                self._audit._rollback()
                self._one_time_tokens._rollback()
                self._refresh_tokens._rollback()
                self._oauth_identities._rollback()
                self._notification_preferences._rollback()
                self._jobs._rollback()
                raise
            self._one_time_tokens._commit()
            self._refresh_tokens._commit()
            self._oauth_identities._commit()
            self._audit._commit()
            self._notification_preferences._commit()
            self._jobs._commit()

    async def rollback(self) -> None:
        self._users._rollback()
        self._audit._rollback()
        self._one_time_tokens._rollback()
        self._refresh_tokens._rollback()
        self._oauth_identities._rollback()
        self._notification_preferences._rollback()
        self._jobs._rollback()


class InMemoryUnitOfWorkFactory(IdentityUnitOfWorkFactory, NotificationsUnitOfWorkFactory):
    """Owns one `InMemoryIdentityState`; each call opens a unit of work on it.

    `jobs` is the outbox store to enqueue into (shared with the relay's `InMemoryOutbox`);
    a private one by default.
    """

    def __init__(self, jobs: InMemoryJobStore | None = None) -> None:
        self.state = InMemoryIdentityState()
        if jobs is not None:
            self.state.jobs = jobs

    def __call__(self, *, read_only: bool = False) -> InMemoryUnitOfWork:
        return InMemoryUnitOfWork(self.state)
