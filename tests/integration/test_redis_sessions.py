"""RedisSessionStore details the shared contract can't see: key TTLs, pruning, db choice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import redis.asyncio as aioredis

from adapters.redis.client import create_redis
from adapters.redis.sessions import RedisSessionStore
from adapters.system.clock import SystemClock
from core.identity.model import BrowserSession
from core.shared.hashing import fingerprint
from tests.services import REDIS_TEST_DB

pytestmark = pytest.mark.integration

USER = 42


@pytest.fixture
async def client(redis_url: str, key_prefix: str) -> AsyncIterator[aioredis.Redis]:
    redis = create_redis(redis_url)
    yield redis
    keys = [key async for key in redis.scan_iter(match=f"{key_prefix}*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


def _session(n: int, *, idle: int = 600) -> BrowserSession:
    now = SystemClock().now()
    return BrowserSession(
        token_hash=fingerprint(f"token-{n}"),
        user_id=USER,
        csrf_token="csrf",
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=1),
        idle_timeout_seconds=idle,
    )


async def test_db_argument_overrides_the_url(redis_url: str) -> None:
    base = redis_url.rsplit("/", 1)[0]
    other_db = (REDIS_TEST_DB + 1) % 16
    for url in (f"{base}/{other_db}", f"{base}/?db={other_db}", base):
        client = create_redis(url, db=REDIS_TEST_DB)
        try:
            assert (await client.client_info())["db"] == REDIS_TEST_DB, url
        finally:
            await client.aclose()


async def test_every_key_of_a_session_carries_its_ttl_and_touch_renews_them(
    client: aioredis.Redis, key_prefix: str
) -> None:
    store = RedisSessionStore(client, key_prefix=key_prefix)
    session = await store.create(_session(1, idle=100), SystemClock().now())
    keys = [f"{key_prefix}s:{session.token_hash}", f"{key_prefix}id:{session.id}"]
    index = f"{key_prefix}u:{USER}"

    for key in [*keys, index]:
        assert 95 <= await client.ttl(key) <= 100, key
    assert await client.ttl(f"{key_prefix}seq") == -1  # ids must outlive every session

    await store.touch(session.token_hash, SystemClock().now(), 300)
    for key in [*keys, index]:
        assert 295 <= await client.ttl(key) <= 300, key

    # A shorter TTL for one session must not shorten the index other sessions rely on.
    await store.touch(session.token_hash, SystemClock().now(), 50)
    for key in keys:
        assert 45 <= await client.ttl(key) <= 50, key
    assert await client.ttl(index) > 290


async def test_expired_members_are_pruned_from_the_user_index(
    client: aioredis.Redis, key_prefix: str
) -> None:
    store = RedisSessionStore(client, key_prefix=key_prefix)
    now = SystemClock().now()
    await store.create(_session(1, idle=1), now)
    await store.create(_session(2, idle=1), now)
    kept = await store.create(_session(3), now)
    index = f"{key_prefix}u:{USER}"
    assert await client.zcard(index) == 3

    await asyncio.sleep(1.2)

    assert await client.zcard(index) == 3  # Redis expired the sessions, not the members
    assert await store.list_for_user(USER) == [kept]
    assert await client.zcard(index) == 1
    assert await store.delete_all_for_user(USER) == 1
    assert await client.exists(index) == 0


async def test_a_client_that_decodes_responses_works_too(
    client: aioredis.Redis, redis_url: str, key_prefix: str
) -> None:
    decoding = aioredis.Redis.from_url(
        redis_url, decode_responses=True, socket_timeout=2, socket_connect_timeout=2
    )
    try:
        writer = RedisSessionStore(client, key_prefix=key_prefix)
        reader = RedisSessionStore(decoding, key_prefix=key_prefix)
        session = await writer.create(_session(1), SystemClock().now())
        assert await reader.get(session.token_hash) == session
        assert await reader.list_for_user(USER) == [session]
    finally:
        await decoding.aclose()
