"""Cache and rate-limit backends are chosen by settings; on Redis, sessions, cache and
rate limits share one keyspace (the URL's database), apart by key prefix."""

from __future__ import annotations

from datetime import timedelta

import pytest
from redis import Redis

from adapters.redis.callers import RedisCallerReader
from core.identity.callers import CallerReader
from core.identity.model import BrowserSession
from core.identity.ports import SessionStore
from core.platform.cache import Cache
from core.platform.rate_limit import RateLimiter
from core.shared.clock import Clock
from entrypoints.bootstrap.runtime import start_runtime
from entrypoints.bootstrap.settings import Settings

pytestmark = pytest.mark.integration

CHEAP_HASHING = {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "allow_weak_hashing": True}


def _settings(**overrides: object) -> Settings:
    return Settings(
        _env_file=None,
        secret_key="k" * 48,
        passwords=CHEAP_HASHING,
        database={"backend": "memory"},
        **overrides,
    )  # type: ignore[call-arg]


async def test_redis_backends_share_one_keyspace_apart_by_prefix(
    redis_url: str, key_prefix: str
) -> None:
    settings = _settings(
        redis={"url": redis_url},
        sessions={"backend": "redis", "key_prefix": f"{key_prefix}s:"},
        cache={"backend": "redis", "key_prefix": f"{key_prefix}c:"},
        rate_limit={"backend": "redis", "key_prefix": f"{key_prefix}r:"},
    )
    runtime = await start_runtime(settings)
    direct = Redis.from_url(redis_url)  # the URL's database: the one keyspace
    try:
        await runtime.get(Cache).set("greeting", "hello", 60)
        assert (await runtime.get(RateLimiter).hit("client", 5, 60)).remaining == 4
        now = runtime.get(Clock).now()
        session = BrowserSession(
            token_hash="t" * 64,
            user_id=1,
            csrf_token="c",
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=1),
            idle_timeout_seconds=600,
        )
        await runtime.get(SessionStore).create(session, now)
        assert await runtime.readiness() == {"sessions": "ok", "cache": "ok", "rate_limit": "ok"}
        for prefix in ("s:", "c:", "r:"):
            assert direct.keys(f"{key_prefix}{prefix}*"), prefix
        # One round trip reads session, user and limit: the three share the server.
        assert isinstance(runtime.get(CallerReader), RedisCallerReader)
        # One client, one pool for the three.
        clients = {id(runtime.get(kind)._redis) for kind in (SessionStore, Cache, RateLimiter)}
        assert len(clients) == 1
    finally:
        await runtime.aclose()
        for key in direct.scan_iter(f"{key_prefix}*"):
            direct.delete(key)
        direct.close()


async def test_memcached_backends(memcached_servers: list[str], key_prefix: str) -> None:
    settings = _settings(
        memcached={"servers": ",".join(memcached_servers)},
        cache={"backend": "memcached", "key_prefix": f"{key_prefix}c:"},
        rate_limit={"backend": "memcached", "key_prefix": f"{key_prefix}r:"},
    )
    runtime = await start_runtime(settings)
    try:
        await runtime.get(Cache).set("greeting", {"hello": "world"}, 60)
        assert await runtime.get(Cache).get("greeting") == {"hello": "world"}
        assert (await runtime.get(RateLimiter).hit("client", 5, 60)).allowed
        assert await runtime.readiness() == {"sessions": "ok", "cache": "ok", "rate_limit": "ok"}
    finally:
        await runtime.aclose()
