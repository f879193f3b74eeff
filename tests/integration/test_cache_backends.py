"""Cache and rate-limit backends are chosen by settings, each on its own Redis database."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from redis import Redis

from core.platform.cache import Cache
from core.platform.rate_limit import RateLimiter
from entrypoints.bootstrap.runtime import start_runtime
from entrypoints.bootstrap.settings import Settings
from tests.services import REDIS_TEST_DB

pytestmark = pytest.mark.integration

CHEAP_HASHING = {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "allow_weak_hashing": True}
RATE_LIMIT_DB = REDIS_TEST_DB - 1  # tests own databases 10-15


def _settings(**overrides: object) -> Settings:
    return Settings(
        secret_key="k" * 48, passwords=CHEAP_HASHING, database={"backend": "memory"}, **overrides
    )  # type: ignore[arg-type]


async def test_redis_backends_use_their_own_logical_databases(
    redis_url: str, key_prefix: str
) -> None:
    base = redis_url.rsplit("/", 1)[0]
    settings = _settings(
        redis={"url": base, "cache_db": REDIS_TEST_DB, "rate_limit_db": RATE_LIMIT_DB},
        cache={"backend": "redis", "key_prefix": f"{key_prefix}c:"},
        rate_limit={"backend": "redis", "key_prefix": f"{key_prefix}r:"},
    )
    runtime = await start_runtime(settings)
    host = urlsplit(base)
    cache_db = Redis(host=host.hostname, port=host.port or 6379, db=REDIS_TEST_DB)
    limit_db = Redis(host=host.hostname, port=host.port or 6379, db=RATE_LIMIT_DB)
    try:
        await runtime.get(Cache).set("greeting", "hello", 60)
        assert (await runtime.get(RateLimiter).hit("client", 5, 60)).remaining == 4
        assert await runtime.readiness() == {"sessions": "ok", "cache": "ok", "rate_limit": "ok"}
        assert cache_db.keys(f"{key_prefix}c:*") and not cache_db.keys(f"{key_prefix}r:*")
        assert limit_db.keys(f"{key_prefix}r:*") and not limit_db.keys(f"{key_prefix}c:*")
    finally:
        await runtime.aclose()
        for client in (cache_db, limit_db):
            for key in client.scan_iter(f"{key_prefix}*"):
                client.delete(key)
            client.close()


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
