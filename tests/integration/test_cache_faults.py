"""Cache and rate limiter when their server dies or hangs: UnavailableError, quickly,
never a driver's exception; cache-aside keeps serving from the loader; and recovery.

Each test starts its own `redis-server` or `memcached` on a free port and stops it by
PID; the machine's shared servers are never touched.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

import pytest

from adapters.memcached.cache import MemcachedCache
from adapters.memcached.client import create_memcached
from adapters.memcached.rate_limit import MemcachedRateLimiter
from adapters.redis.cache import RedisCache
from adapters.redis.client import create_redis
from adapters.redis.rate_limit import RedisRateLimiter
from adapters.threads import ThreadOffload
from core.platform.cache import Cache
from core.platform.cache_aside import cached
from core.platform.rate_limit import RateLimiter
from core.shared.errors import UnavailableError
from tests.private_servers import PrivateServer, private_server

pytestmark = pytest.mark.integration

TIMEOUT = 0.5  # connect and read timeout of the clients under test
# How fast a call fails is the point of these tests, so they bound it, with margins a
# loaded 2-core machine passes. A refused connection fails in milliseconds, plus at most
# one short backoff (Redis retries a dropped connection once, after 0.1 s at most): less
# than one timeout, or the client waited for something. A hung server costs one read
# timeout; two (a retried timeout) would reach the bound, which leaves one more timeout
# (0.5 s) of slack for scheduling.
KILLED_WITHIN = TIMEOUT
HUNG_WITHIN = 2 * TIMEOUT


@dataclass
class Private:
    """A server of this test alone, with a cache and a rate limiter connected to it."""

    server: PrivateServer
    cache: Cache
    limiter: RateLimiter


@pytest.fixture(params=["redis", "memcached"])
def server(request: pytest.FixtureRequest) -> Iterator[PrivateServer]:
    with private_server(request.param) as server:
        yield server


@pytest.fixture
async def private(server: PrivateServer) -> AsyncIterator[Private]:
    if server.kind == "redis":
        client = create_redis(server.redis_url(0), connect_timeout=TIMEOUT, socket_timeout=TIMEOUT)
        yield Private(
            server,
            RedisCache(client, key_prefix="c:"),
            RedisRateLimiter(client, key_prefix="r:"),
        )
        await client.aclose()
        return
    memcached = create_memcached(
        [server.address], connect_timeout=TIMEOUT, timeout=TIMEOUT, max_pool_size=16
    )
    offload = ThreadOffload(16)
    yield Private(
        server,
        MemcachedCache(memcached, key_prefix="c:", offload=offload),
        MemcachedRateLimiter(memcached, key_prefix="r:", offload=offload),
    )
    memcached.close()


def _every_call(p: Private) -> dict[str, tuple[str, Callable[[], Awaitable[object]]]]:
    cache, limiter = p.cache, p.limiter
    return {
        "get": ("cache", lambda: cache.get("warm")),
        "get_many": ("cache", lambda: cache.get_many(["warm", "tagged"])),
        "get tagged": ("cache", lambda: cache.get("tagged")),
        "set": ("cache", lambda: cache.set("new", {"v": 1}, 60)),
        "set tagged": ("cache", lambda: cache.set("new-tagged", 1, 60, tags=["t", "u"])),
        "delete": ("cache", lambda: cache.delete("warm")),
        "incr": ("cache", lambda: cache.incr("counter", ttl_seconds=60)),
        "invalidate_tag": ("cache", lambda: cache.invalidate_tag("t")),
        "cache ping": ("cache", cache.ping),
        "hit": ("rate_limit", lambda: limiter.hit("client", 100, 60)),
        "limiter ping": ("rate_limit", limiter.ping),
    }


async def _warm_up(p: Private) -> None:
    await p.cache.set("warm", "value", 60)
    await p.cache.set("tagged", "value", 60, tags=["t"])
    assert await p.cache.get_many(["warm", "tagged"]) == {"warm": "value", "tagged": "value"}
    assert await p.cache.incr("counter", ttl_seconds=60) == 1
    assert (await p.limiter.hit("client", 100, 60)).allowed  # pooled connections are warm


async def _assert_every_call_unavailable(p: Private, *, within: float) -> None:
    # One call at a time: the bound is per call. (Memcached calls run in threads of the
    # loop's default executor, which has only cpu_count + 4 of them; many concurrent
    # calls would queue there behind each other's timeouts.)
    for name, (dependency, call) in _every_call(p).items():
        started = time.monotonic()
        with pytest.raises(UnavailableError) as caught:
            await call()
        elapsed = time.monotonic() - started
        assert caught.value.dependency == dependency, name
        assert elapsed < within, f"{name} took {elapsed:.2f}s"


async def _assert_cache_aside_serves_the_loader(p: Private, *, within: float) -> None:
    calls = 0

    async def loader() -> dict[str, int]:
        nonlocal calls
        calls += 1
        return {"call": calls}

    for expected in (1, 2):
        started = time.monotonic()
        assert await cached(p.cache, "warm", 60, loader) == {"call": expected}
        assert time.monotonic() - started < within


async def test_a_killed_server_makes_every_call_unavailable_quickly(private: Private) -> None:
    await _warm_up(private)
    private.server.kill()

    await _assert_every_call_unavailable(private, within=KILLED_WITHIN)
    await _assert_cache_aside_serves_the_loader(private, within=2 * KILLED_WITHIN)


async def test_a_hung_server_times_out_as_unavailable_and_recovers(private: Private) -> None:
    await _warm_up(private)
    private.server.freeze()  # the kernel still accepts connections; no reply comes
    try:
        await _assert_every_call_unavailable(private, within=HUNG_WITHIN)
        # A lookup and a store, each bounded by one timeout.
        await _assert_cache_aside_serves_the_loader(private, within=2 * HUNG_WITHIN)
    finally:
        private.server.thaw()

    await private.cache.ping()
    await private.limiter.ping()
    # Commands that timed out may still run once the server resumes, so only facts
    # they cannot change are checked.
    assert await private.cache.get("tagged") in ("value", None)
    await private.cache.set("after", [1, 2], 60)
    assert await private.cache.get("after") == [1, 2]
    assert (await private.limiter.hit("another-client", 1, 60)).allowed
