"""Forgetting a cached user whenever a unit of work changes it (see `user_cache.py`)."""

from __future__ import annotations

from datetime import datetime
from types import TracebackType
from typing import Any, Self

from core.identity.model import Email, User, Username
from core.identity.ports import IdentityUnitOfWork, IdentityUnitOfWorkFactory, UserRepository
from core.identity.user_cache import UserCache
from core.shared.query import ListQuery, Page


class InvalidatingUnitOfWorkFactory(IdentityUnitOfWorkFactory):
    """Opens `inner`'s units of work; after one commits, every user it wrote through its
    `users` repository (`add`, `update`, `soft_delete`, `end_tokens_before`) is forgotten
    by `cache`. Read-only units are `inner`'s own, untouched (they promise not to write).

    Everything but `users` is the inner unit's. Keeping it whole: a method added to
    `UserRepository` must be added to `_RecordingUsers`, saying whether it writes (the
    class fails at construction until then); an attribute added to `IdentityUnitOfWork`
    is passed on in `_InvalidatingUnitOfWork.__init__` (mypy names it until then).
    Writes that bypass the repository (raw SQL, an admin tool on the tables) must call
    `UserCache.forget` themselves, or live with the TTL.
    """

    def __init__(self, inner: IdentityUnitOfWorkFactory, cache: UserCache) -> None:
        self.inner = inner
        self._cache = cache

    def __call__(self, *, read_only: bool = False) -> IdentityUnitOfWork:
        unit = self.inner(read_only=read_only)
        return unit if read_only else _InvalidatingUnitOfWork(unit, self._cache)


class _InvalidatingUnitOfWork(IdentityUnitOfWork):
    def __init__(self, unit: IdentityUnitOfWork, cache: UserCache) -> None:
        self._unit = unit
        self._cached = cache
        self._changed: set[int] = set()
        self.users = _RecordingUsers(unit.users, self._changed)
        self.audit = unit.audit
        self.one_time_tokens = unit.one_time_tokens
        self.refresh_tokens = unit.refresh_tokens
        self.oauth_identities = unit.oauth_identities
        self.jobs = unit.jobs

    def __getattr__(self, name: str) -> Any:
        # Whatever else the inner unit offers beyond `IdentityUnitOfWork`.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._unit, name)

    async def __aenter__(self) -> Self:
        await self._unit.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._changed.clear()  # not committed: nothing changed
        await self._unit.__aexit__(exc_type, exc, tb)

    async def commit(self) -> None:
        await self._unit.commit()
        if self._changed:
            changed = set(self._changed)
            self._changed.clear()
            await self._cached.forget_all(changed)

    async def rollback(self) -> None:
        self._changed.clear()
        await self._unit.rollback()


class _RecordingUsers(UserRepository):
    """The inner repository, noting the id of every user a write touches."""

    def __init__(self, inner: UserRepository, changed: set[int]) -> None:
        self._inner = inner
        self._changed = changed

    async def add(self, user: User) -> User:
        stored = await self._inner.add(user)
        if stored.id is not None:
            self._changed.add(stored.id)
        return stored

    async def update(self, user: User) -> User:
        if user.id is not None:
            self._changed.add(user.id)
        return await self._inner.update(user)

    async def soft_delete(self, user_id: int, at: datetime) -> bool:
        self._changed.add(user_id)
        return await self._inner.soft_delete(user_id, at)

    async def end_tokens_before(self, user_id: int, at: datetime) -> bool:
        self._changed.add(user_id)
        return await self._inner.end_tokens_before(user_id, at)

    # Reads (and the lock, which changes nothing).
    async def get(self, user_id: int, *, include_deleted: bool = False) -> User | None:
        return await self._inner.get(user_id, include_deleted=include_deleted)

    async def get_by_email(self, email: Email, *, include_deleted: bool = False) -> User | None:
        return await self._inner.get_by_email(email, include_deleted=include_deleted)

    async def get_by_username(
        self, username: Username, *, include_deleted: bool = False
    ) -> User | None:
        return await self._inner.get_by_username(username, include_deleted=include_deleted)

    async def list(self, query: ListQuery) -> Page[User]:
        return await self._inner.list(query)

    async def lock(self, user_id: int) -> User | None:
        return await self._inner.lock(user_id)
