"""The cached user read on the real cache servers: one read of the database per TTL, a
commit forgets at once, and a load that races a change leaves no stale entry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from adapters.memory.telemetry import InMemoryTelemetry
from adapters.memory.unit_of_work import InMemoryUnitOfWorkFactory
from core.identity.model import Email, User, Username
from core.identity.user_cache import CachedUsers, UserCache, UserCachePolicy, user_key
from core.identity.user_invalidation import InvalidatingUnitOfWorkFactory
from tests.contracts.test_cache import Harness, _memcached, _redis
from tests.unit.core.test_user_cache import PausingStore

pytestmark = pytest.mark.integration


@pytest.fixture(params=["redis", "memcached"])
async def h(request: pytest.FixtureRequest, key_prefix: str) -> AsyncIterator[Harness]:
    if request.param == "redis":
        context = _redis(request.getfixturevalue("redis_url"), key_prefix)
    else:
        context = _memcached(request.getfixturevalue("memcached_servers"), key_prefix)
    async with context as harness:
        yield harness


async def _add(store: InMemoryUnitOfWorkFactory, name: str) -> int:
    async with store() as tx:
        user = await tx.users.add(
            User(email=Email(f"{name}@x.org"), username=Username(name), password_hash="h")
        )
        await tx.commit()
    assert user.id is not None
    return user.id


async def test_hits_forget_and_race_on_a_server(h: Harness) -> None:
    store = InMemoryUnitOfWorkFactory()
    cache = UserCache(h.cache, UserCachePolicy(ttl_seconds=60), InMemoryTelemetry())
    users = CachedUsers(store, cache)
    services_uow = InvalidatingUnitOfWorkFactory(store, cache)
    user_id = await _add(store, "ada")

    first = await users.get(user_id)
    assert first is not None and first.username == Username("ada")
    assert await h.cache.get(user_key(user_id)) is not None
    assert await users.get(user_id) == first

    async with services_uow() as tx:  # a change: forgotten on commit
        await tx.users.update(first.copy(username=Username("ada2"), password_hash="h"))
        await tx.commit()
    assert await h.cache.get(user_key(user_id)) is not None  # stale copy still there...
    renamed = await users.get(user_id)
    assert renamed is not None and renamed.username == Username("ada2")  # ...and never served

    pausing = PausingStore(store)
    racing = CachedUsers(pausing, cache)
    await users.forget(user_id)  # so the racing read misses and loads
    slow = asyncio.create_task(racing.get(user_id))
    await asyncio.wait_for(pausing.read_done.wait(), 5)
    async with services_uow() as tx:
        await tx.users.update(renamed.copy(username=Username("ada3"), password_hash="h"))
        await tx.commit()
    pausing.release.set()
    assert (await slow).username == Username("ada2")  # type: ignore[union-attr]
    latest = await users.get(user_id)
    assert latest is not None and latest.username == Username("ada3")
    assert await users.get(999_999) is None
