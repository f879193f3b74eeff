"""The SessionStore contract, run against every adapter of the port.

Each test gets a `Harness`: the store, the time to stamp sessions with, and a way to let
time pass. In memory time is a ManualClock that jumps; in Redis it is the real clock and
a short real sleep, because Redis expires keys by its own clock. TTLs are kept at 1 s so
the same assertions hold on both and the Redis run sleeps as little as possible.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from adapters.memory.clock import ManualClock
from adapters.memory.sessions import InMemorySessionStore
from adapters.redis.client import create_redis
from adapters.redis.sessions import RedisSessionStore
from adapters.system.clock import SystemClock
from adapters.system.tokens import SecretsTokenGenerator
from core.identity.model import BrowserSession
from core.identity.ports import SessionStore
from core.shared.hashing import fingerprint

ALICE, BOB = 101, 202
# Long enough for a 1-second TTL to have run out everywhere, short enough to keep the
# Redis run quick.
PAST_ONE_SECOND = 1.2

_tokens = SecretsTokenGenerator()


@dataclass
class Harness:
    store: SessionStore
    now: Callable[[], datetime]
    advance: Callable[[float], Awaitable[None]]

    def session(
        self,
        user_id: int,
        *,
        token: str | None = None,
        idle: int = 600,
        lifetime: int = 3600,
        created_at: datetime | None = None,
        **fields: object,
    ) -> BrowserSession:
        start = created_at or self.now()
        return BrowserSession(
            token_hash=fingerprint(token or _tokens.token(32)),
            user_id=user_id,
            csrf_token=_tokens.token(32),
            created_at=start,
            last_seen_at=start,
            expires_at=start + timedelta(seconds=lifetime),
            idle_timeout_seconds=idle,
            **fields,  # type: ignore[arg-type]
        )

    async def create(self, session: BrowserSession) -> BrowserSession:
        return await self.store.create(session, self.now())


@asynccontextmanager
async def _memory_harness() -> AsyncIterator[Harness]:
    clock = ManualClock()

    async def advance(seconds: float) -> None:
        clock.advance(seconds)

    yield Harness(InMemorySessionStore(clock), clock.now, advance)


@asynccontextmanager
async def _redis_harness(redis_url: str, key_prefix: str) -> AsyncIterator[Harness]:
    client = create_redis(redis_url)
    try:
        yield Harness(
            RedisSessionStore(client, key_prefix=key_prefix), SystemClock().now, asyncio.sleep
        )
    finally:
        keys = [key async for key in client.scan_iter(match=f"{key_prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
async def h(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    if request.param == "memory":
        context = _memory_harness()
    else:
        context = _redis_harness(
            request.getfixturevalue("redis_url"), request.getfixturevalue("key_prefix")
        )
    async with context as harness:
        yield harness


async def _listed(h: Harness, user_id: int) -> list[str]:
    return [s.token_hash for s in await h.store.list_for_user(user_id)]


async def test_create_assigns_distinct_positive_ids_and_keeps_every_field(h: Harness) -> None:
    originals = [
        h.session(ALICE, ip="203.0.113.7", user_agent="Firefox", extra={"mfa": "totp"}),
        h.session(ALICE),
        h.session(BOB, ip="", user_agent=None),
    ]
    stored = [await h.create(s) for s in originals]

    ids = [s.id for s in stored]
    assert all(isinstance(i, int) and i > 0 for i in ids)
    assert len(set(ids)) == 3
    for original, result in zip(originals, stored, strict=True):
        assert result == dataclasses.replace(original, id=result.id)
        assert await h.store.get(original.token_hash) == result


async def test_concurrent_creates_get_distinct_ids(h: Harness) -> None:
    stored = await asyncio.gather(*(h.create(h.session(ALICE)) for _ in range(30)))
    assert len({s.id for s in stored}) == 30


async def test_get_returns_none_for_unknown_hash_and_does_not_touch(h: Harness) -> None:
    assert await h.store.get(fingerprint("never-issued")) is None

    session = await h.create(h.session(ALICE))
    await h.advance(0.05)
    first = await h.store.get(session.token_hash)
    assert first is not None and first.last_seen_at == session.last_seen_at

    # A caller changing its copy must not change what the store holds.
    first.last_seen_at += timedelta(hours=1)
    first.extra["tampered"] = "yes"
    assert await h.store.get(session.token_hash) == session


async def test_sessions_expire_at_the_earlier_of_idle_and_absolute_end(h: Harness) -> None:
    idle_bound = await h.create(h.session(ALICE, idle=1, lifetime=3600))
    absolute_bound = await h.create(h.session(ALICE, idle=3600, lifetime=1))
    long_lived = await h.create(h.session(ALICE))
    assert await h.store.get(idle_bound.token_hash) is not None
    assert await h.store.get(absolute_bound.token_hash) is not None

    await h.advance(PAST_ONE_SECOND)

    for gone in (idle_bound, absolute_bound):
        assert await h.store.get(gone.token_hash) is None
        assert gone.id is not None
        assert await h.store.delete_for_user(ALICE, gone.id) is False
        assert await h.store.delete(gone.token_hash) is False
    assert await h.store.get(long_lived.token_hash) == long_lived
    assert await _listed(h, ALICE) == [long_lived.token_hash]
    assert await h.store.delete_all_for_user(ALICE) == 1


async def test_touch_records_activity_and_pushes_expiry_of_every_key(h: Harness) -> None:
    session = await h.create(h.session(ALICE, idle=1))
    await h.advance(0.6)
    seen = h.now()
    await h.store.touch(session.token_hash, seen, 3)
    await h.advance(0.6)  # past the original 1-second TTL, within the new one

    current = await h.store.get(session.token_hash)
    assert current is not None
    assert current.last_seen_at == seen
    assert current.created_at == session.created_at
    assert await _listed(h, ALICE) == [session.token_hash]
    assert session.id is not None
    assert await h.store.delete_for_user(ALICE, session.id) is True


async def test_touch_of_an_unknown_hash_creates_nothing(h: Harness) -> None:
    unknown = fingerprint("never-issued")
    await h.store.touch(unknown, h.now(), 60)
    assert await h.store.get(unknown) is None


async def test_delete_removes_one_session(h: Harness) -> None:
    doomed = await h.create(h.session(ALICE))
    kept = await h.create(h.session(ALICE))

    assert await h.store.delete(doomed.token_hash) is True
    assert await h.store.delete(doomed.token_hash) is False
    assert await h.store.get(doomed.token_hash) is None
    assert doomed.id is not None
    assert await h.store.delete_for_user(ALICE, doomed.id) is False
    assert await _listed(h, ALICE) == [kept.token_hash]


async def test_delete_for_user_only_for_the_owner(h: Harness) -> None:
    alices = await h.create(h.session(ALICE))
    assert alices.id is not None

    assert await h.store.delete_for_user(BOB, alices.id) is False
    assert await h.store.get(alices.token_hash) == alices
    assert await _listed(h, ALICE) == [alices.token_hash]

    assert await h.store.delete_for_user(ALICE, alices.id) is True
    assert await h.store.get(alices.token_hash) is None
    assert await h.store.delete_for_user(ALICE, alices.id) is False
    assert await h.store.delete_for_user(ALICE, 10**9) is False


async def test_delete_all_for_user_removes_only_that_users_sessions(h: Harness) -> None:
    alices = [await h.create(h.session(ALICE)) for _ in range(3)]
    bobs = await h.create(h.session(BOB))

    assert await h.store.delete_all_for_user(ALICE) == 3

    for session in alices:
        assert await h.store.get(session.token_hash) is None
    assert await _listed(h, ALICE) == []
    assert await h.store.get(bobs.token_hash) == bobs
    assert await _listed(h, BOB) == [bobs.token_hash]
    assert await h.store.delete_all_for_user(ALICE) == 0


async def test_delete_all_for_user_can_keep_the_current_session(h: Harness) -> None:
    others = [await h.create(h.session(ALICE)) for _ in range(2)]
    current = await h.create(h.session(ALICE))

    assert await h.store.delete_all_for_user(ALICE, keep_token_hash=current.token_hash) == 2

    assert await h.store.get(current.token_hash) == current
    assert await _listed(h, ALICE) == [current.token_hash]
    for session in others:
        assert await h.store.get(session.token_hash) is None


async def test_list_for_user_is_oldest_first_and_only_that_users(h: Harness) -> None:
    base = h.now()
    middle = await h.create(h.session(ALICE, created_at=base - timedelta(seconds=20)))
    newest = await h.create(h.session(ALICE, created_at=base - timedelta(seconds=10)))
    await h.create(h.session(BOB, created_at=base - timedelta(seconds=25)))
    oldest = await h.create(h.session(ALICE, created_at=base - timedelta(seconds=30)))

    listed = await h.store.list_for_user(ALICE)

    assert listed == [oldest, middle, newest]
    assert await h.store.list_for_user(999) == []


async def test_list_for_user_breaks_created_at_ties_by_creation_order(h: Harness) -> None:
    same_instant = h.now()
    created = [await h.create(h.session(BOB, created_at=same_instant)) for _ in range(6)]
    assert await h.store.list_for_user(BOB) == created


async def test_logout_all_racing_creates_leaves_no_session_list_cannot_see(h: Harness) -> None:
    candidates = [h.session(ALICE) for _ in range(40)]
    operations: list[Awaitable[object]] = []
    for index, session in enumerate(candidates):
        operations.append(h.create(session))
        if index % 8 == 7:
            operations.append(h.store.delete_all_for_user(ALICE))
    results = await asyncio.gather(*operations)
    removed_during_race = sum(r for r in results if isinstance(r, int))

    alive = {s.token_hash for s in candidates if await h.store.get(s.token_hash) is not None}
    assert set(await _listed(h, ALICE)) == alive

    removed_at_end = await h.store.delete_all_for_user(ALICE)
    # Every session was removed exactly once: none escaped a logout-all, none counted twice.
    assert removed_at_end == len(alive)
    assert removed_during_race + removed_at_end == len(candidates)
    for session in candidates:
        assert await h.store.get(session.token_hash) is None
    assert await _listed(h, ALICE) == []


async def test_ping_succeeds_when_the_store_is_up(h: Harness) -> None:
    assert await h.store.ping() is None


@pytest.mark.integration
async def test_redis_never_stores_a_raw_token(redis_url: str, key_prefix: str) -> None:
    client = create_redis(redis_url)
    try:
        async with _redis_harness(redis_url, key_prefix) as harness:
            token = _tokens.token(32)
            session = await harness.create(harness.session(ALICE, token=token, ip="198.51.100.1"))
            await harness.store.touch(session.token_hash, harness.now(), 60)
            await harness.store.list_for_user(ALICE)

            keys = [key async for key in client.scan_iter(match=f"{key_prefix}*")]
            contents: list[bytes] = list(keys)
            for key in keys:
                kind = await client.type(key)
                if kind == b"hash":
                    for field, value in (await client.hgetall(key)).items():
                        contents += [field, value]
                elif kind == b"string":
                    contents.append(await client.get(key))
                elif kind == b"zset":
                    contents += await client.zrange(key, 0, -1)
                else:
                    pytest.fail(f"unexpected key type {kind!r} at {key!r}")

            blob = b"\n".join(contents)
            assert session.token_hash.encode() in blob  # the scan did reach the session
            assert len(keys) >= 3
            assert token.encode() not in blob
    finally:
        await client.aclose()
