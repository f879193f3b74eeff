"""The CallerReader contract, run against every way of reading a caller: the core's
separate reads over in-memory ports, the same over the Redis adapters, and the Redis
adapter that does it in one round trip. Each answers what the separate ports answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from adapters.memory.cache import InMemoryCache
from adapters.memory.clock import ManualClock
from adapters.memory.rate_limit import InMemoryRateLimiter
from adapters.memory.sessions import InMemorySessionStore
from adapters.memory.telemetry import InMemoryTelemetry
from adapters.memory.unit_of_work import InMemoryUnitOfWorkFactory
from adapters.redis.cache import RedisCache
from adapters.redis.callers import RedisCallerReader
from adapters.redis.client import create_redis
from adapters.redis.rate_limit import RedisRateLimiter
from adapters.redis.sessions import RedisSessionStore
from core.identity.callers import (
    CallerReader,
    SeparateCallerReader,
    TieredLimit,
    caller_user,
)
from core.identity.model import BrowserSession, Email, User, Username
from core.identity.ports import SessionStore
from core.identity.user_cache import CachedUsers, UserCache, UserCachePolicy
from core.platform.cache import Cache
from core.platform.rate_limit import RateLimiter
from core.shared.errors import UnavailableError
from core.shared.hashing import fingerprint
from tests.private_servers import free_port

LIMIT = TieredLimit("general", default=5, window_seconds=3600, by_tier={"pro": 3})


@dataclass
class Harness:
    reader: CallerReader
    sessions: SessionStore
    cache: Cache
    limiter: RateLimiter
    users: CachedUsers
    store: InMemoryUnitOfWorkFactory

    async def user(self, name: str = "ada", tier: str = "free") -> int:
        async with self.store() as tx:
            user = await tx.users.add(
                User(
                    email=Email(f"{name}@example.com"),
                    username=Username(name),
                    password_hash="h",
                    tier_code=tier,
                )
            )
            await tx.commit()
        assert user.id is not None
        return user.id

    async def session(self, user_id: int, token: str = "token-of-ada") -> str:
        now = datetime.now(UTC)
        session = BrowserSession(
            token_hash=fingerprint(token),
            user_id=user_id,
            csrf_token="c" * 43,
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=1),
            idle_timeout_seconds=1800,
            ip="203.0.113.7",
        )
        await self.sessions.create(session, now)
        return fingerprint(token)


def _harness(
    reader: CallerReader | None, sessions: SessionStore, cache: Cache, limiter: RateLimiter
) -> Harness:
    store = InMemoryUnitOfWorkFactory()
    user_cache = UserCache(cache, UserCachePolicy(ttl_seconds=60), InMemoryTelemetry())
    separate = SeparateCallerReader(sessions, user_cache, limiter)
    return Harness(
        reader or separate, sessions, cache, limiter, CachedUsers(store, user_cache), store
    )


@asynccontextmanager
async def _memory() -> AsyncIterator[Harness]:
    clock = ManualClock(datetime.now(UTC))
    yield _harness(
        None, InMemorySessionStore(clock), InMemoryCache(clock), InMemoryRateLimiter(clock)
    )


@asynccontextmanager
async def _redis(url: str, prefix: str, *, one_round_trip: bool) -> AsyncIterator[Harness]:
    client = create_redis(url)
    prefixes = {"s": f"{prefix}s:", "c": f"{prefix}c:", "r": f"{prefix}r:"}
    reader = (
        RedisCallerReader(
            client,
            sessions_prefix=prefixes["s"],
            cache_prefix=prefixes["c"],
            rate_limit_prefix=prefixes["r"],
        )
        if one_round_trip
        else None
    )
    try:
        yield _harness(
            reader,
            RedisSessionStore(client, key_prefix=prefixes["s"]),
            RedisCache(client, key_prefix=prefixes["c"]),
            RedisRateLimiter(client, key_prefix=prefixes["r"]),
        )
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture(
    params=[
        "separate-memory",
        pytest.param("separate-redis", marks=pytest.mark.integration),
        pytest.param("redis-one-round-trip", marks=pytest.mark.integration),
    ]
)
async def h(request: pytest.FixtureRequest, key_prefix: str) -> AsyncIterator[Harness]:
    if request.param == "separate-memory":
        context = _memory()
    else:
        url = request.getfixturevalue("redis_url")
        context = _redis(url, key_prefix, one_round_trip=request.param == "redis-one-round-trip")
    async with context as harness:
        yield harness


async def test_no_session_reads_nothing_and_counts_nothing(h: Harness) -> None:
    user_id = await h.user()
    await h.users.get(user_id)  # cached: a read could count the limit
    read = await h.reader.read_session(fingerprint("nobody's token"), LIMIT)
    assert read.session is None and read.user_id is None and read.decision is None
    assert (await h.limiter.hit(LIMIT.key(user_id), 5, 3600)).remaining == 4  # untouched


async def test_a_session_comes_back_as_the_store_keeps_it(h: Harness) -> None:
    user_id = await h.user()
    token_hash = await h.session(user_id)
    read = await h.reader.read_session(token_hash, None)
    assert read.session == await h.sessions.get(token_hash)
    assert read.user_id == user_id and read.decision is None


async def test_an_uncached_user_is_loaded_and_the_limit_left_to_the_caller(h: Harness) -> None:
    user_id = await h.user()
    token_hash = await h.session(user_id)
    read = await h.reader.read_session(token_hash, LIMIT)
    assert read.entry is None and read.decision is None  # tier unknown: nothing counted
    user = await caller_user(h.users, read)
    assert user is not None and user.id == user_id and user.password_hash == ""
    # The load cached the user: the next read finds it current and counts the limit.
    again = await h.reader.read_session(token_hash, LIMIT)
    assert (await caller_user(h.users, again)) == user
    assert again.decision is not None and again.decision.allowed
    assert again.decision.limit == 5 and again.decision.remaining == 4


async def test_the_limit_is_the_tiers_and_shared_with_the_limiter(h: Harness) -> None:
    user_id = await h.user("pro", tier="pro")
    await h.users.get(user_id)
    first = await h.reader.read_user(user_id, LIMIT)
    assert first.decision is not None and first.decision.limit == 3
    assert first.decision.remaining == 2
    # The same counter as the limiter's for this key and window.
    assert (await h.limiter.hit(LIMIT.key(user_id), 3, 3600)).remaining == 1
    last = await h.reader.read_user(user_id, LIMIT)
    assert last.decision is not None and last.decision.remaining == 0
    refused = await h.reader.read_user(user_id, LIMIT)
    assert refused.decision is not None and not refused.decision.allowed
    assert refused.decision.retry_after_seconds > 0


async def test_without_a_limit_nothing_is_counted(h: Harness) -> None:
    user_id = await h.user()
    await h.users.get(user_id)
    for _ in range(3):
        read = await h.reader.read_user(user_id, None)
        assert read.decision is None and read.entry is not None
    assert (await h.limiter.hit(LIMIT.key(user_id), 5, 3600)).remaining == 4


async def test_a_forgotten_user_is_not_current_counts_nothing_and_reloads(h: Harness) -> None:
    user_id = await h.user()
    await h.users.get(user_id)
    async with h.store() as tx:
        user = await tx.users.get(user_id)
        assert user is not None
        await tx.users.update(user.copy(username=Username("renamed")))
        await tx.commit()
    await h.users.forget(user_id)
    read = await h.reader.read_user(user_id, LIMIT)
    assert read.decision is None  # a stale entry's tier is not trusted
    reloaded = await caller_user(h.users, read)
    assert reloaded is not None and reloaded.username == Username("renamed")


async def test_a_deleted_user_reads_as_none(h: Harness) -> None:
    user_id = await h.user()
    token_hash = await h.session(user_id)
    async with h.store() as tx:
        await tx.users.soft_delete(user_id, datetime.now(UTC))
        await tx.commit()
    read = await h.reader.read_session(token_hash, LIMIT)
    assert read.session is not None and await caller_user(h.users, read) is None


@pytest.mark.integration
@pytest.mark.parametrize("one_round_trip", [False, True])
async def test_redis_down_fails_sessions_and_degrades_user_reads(
    one_round_trip: bool, key_prefix: str
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    async with _redis_unreachable(dead, key_prefix, one_round_trip=one_round_trip) as h:
        with pytest.raises(UnavailableError):
            await h.reader.read_session(fingerprint("any"), LIMIT)
        read = await h.reader.read_user(7, LIMIT)
        assert read.user_id == 7 and read.cache_unavailable and read.decision is None


@asynccontextmanager
async def _redis_unreachable(
    url: str, prefix: str, *, one_round_trip: bool
) -> AsyncIterator[Harness]:
    client = create_redis(url, connect_timeout=0.5, socket_timeout=0.5)
    reader = RedisCallerReader(client, sessions_prefix=prefix) if one_round_trip else None
    try:
        yield _harness(
            reader,
            RedisSessionStore(client, key_prefix=prefix),
            RedisCache(client, key_prefix=prefix),
            RedisRateLimiter(client, key_prefix=prefix),
        )
    finally:
        await client.aclose()
