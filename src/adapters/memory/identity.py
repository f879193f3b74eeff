"""In-memory identity storage with the same transactional behaviour as the SQL adapter."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

from adapters.memory.query import QueryEvaluator, dataclass_field_types
from core.identity.errors import EmailTakenError, UsernameTakenError, UserNotFoundError
from core.identity.model import User
from core.identity.ports import IdentityUnitOfWork, IdentityUnitOfWorkFactory, UserRepository
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
    callers cannot change stored users by accident.
    """

    def __init__(self, state: InMemoryIdentityState) -> None:
        self._state = state
        self._pending: dict[int, User] = {}

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

    def _commit(self) -> None:
        """Apply the pending changes; the caller holds the state's lock."""
        merged = {**self._state.users, **self._pending}
        for user in self._pending.values():
            _check_unique(user, merged)
        self._state.users.update(self._pending)
        self._pending.clear()

    def _rollback(self) -> None:
        self._pending.clear()


class InMemoryUnitOfWork(IdentityUnitOfWork):
    """A transaction over in-memory identity data (contract: the core `UnitOfWork`).

    Commit applies every pending change at once under the state's lock, or raises
    `EmailTakenError`/`UsernameTakenError` and applies nothing; leaving the block
    without commit discards the changes.
    """

    users: UserRepository

    def __init__(self, state: InMemoryIdentityState) -> None:
        self._state = state
        self._users = InMemoryUserRepository(state)
        self.users = self._users

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._users._rollback()

    async def commit(self) -> None:
        async with self._state.lock:
            try:
                self._users._commit()
            except Exception:
                # As in SQL, a failed commit ends the transaction: nothing survives it.
                self._users._rollback()
                raise

    async def rollback(self) -> None:
        self._users._rollback()


class InMemoryUnitOfWorkFactory(IdentityUnitOfWorkFactory):
    """Owns one `InMemoryIdentityState`; each call opens a unit of work on it."""

    def __init__(self) -> None:
        self.state = InMemoryIdentityState()

    def __call__(self, *, read_only: bool = False) -> InMemoryUnitOfWork:
        return InMemoryUnitOfWork(self.state)
