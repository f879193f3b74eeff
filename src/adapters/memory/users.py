"""Users in process memory, transactional like the SQL table."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.memory.query import QueryEvaluator, dataclass_field_types
from adapters.memory.transaction import PendingWrites
from core.identity.errors import EmailTakenError, UsernameTakenError, UserNotFoundError
from core.identity.model import Email, User, Username
from core.identity.ports import UserRepository
from core.shared.query import Condition, ListQuery, Operator, Page


def _stored_value(user: User, name: str) -> Any:
    """A field as the SQL table stores it: email and username as their text."""
    value = getattr(user, name)
    return str(value) if isinstance(value, Email | Username) else value


# The password hash is never filtered or sorted on, as in the SQL adapter; queries see
# email and username as text, as they do in SQL.
_USER_QUERIES = QueryEvaluator(
    {
        **{k: v for k, v in dataclass_field_types(User).items() if k != "password_hash"},
        "email": str,
        "username": str,
    },
    pk="id",
    get=_stored_value,
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


@dataclass
class InMemoryUserState:
    """The committed users every unit of work of one database shares."""

    users: dict[int, User] = field(default_factory=dict)
    next_user_id: int = 1
    # Per-user locks held by `UserRepository.lock` until the unit of work ends (row locks).
    user_locks: dict[int, asyncio.Lock] = field(default_factory=dict)

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


class InMemoryUserRepository(UserRepository, PendingWrites):
    """`UserRepository` over an `InMemoryUserState` (see the port for the contract).

    Changes are kept apart until the unit of work commits; reads see the committed users
    overlaid with this transaction's own changes. Email and username uniqueness is
    checked at `add`/`update` and again, atomically, at commit. Returns copies, so
    callers cannot change stored users by accident. `tokens_valid_after` only moves
    forward: `update` keeps the stored value, and commit keeps the later of the stored
    and the pending one. `lock` (and `end_tokens_before`) hold a per-user asyncio lock
    until the unit of work ends, as a row lock would.
    """

    def __init__(self, state: InMemoryUserState) -> None:
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

    async def get_by_email(self, email: Email, *, include_deleted: bool = False) -> User | None:
        return self._find("email", str(email), include_deleted)

    async def get_by_username(
        self, username: Username, *, include_deleted: bool = False
    ) -> User | None:
        return self._find("username", str(username), include_deleted)

    async def update(self, user: User) -> User:
        current = self._visible().get(user.id) if user.id is not None else None
        if current is None:
            raise UserNotFoundError()
        stored = user.copy(
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

    def _check(self) -> None:
        """Raise `EmailTakenError`/`UsernameTakenError` if a pending user lost to one
        committed meanwhile (the unique constraints)."""
        merged = {**self._state.users, **self._pending}
        for user in self._pending.values():
            _check_unique(user, merged)

    def _commit(self) -> None:
        """Apply the pending changes; the caller holds the database's lock."""
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
