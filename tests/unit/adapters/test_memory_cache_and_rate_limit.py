"""What the in-memory cache and rate limiter promise beyond the shared contracts, on a
ManualClock: exact boundaries, eviction, and the sliding window's arithmetic."""

from __future__ import annotations

import pytest

from adapters.memory.cache import InMemoryCache
from adapters.memory.clock import ManualClock
from adapters.memory.rate_limit import InMemoryRateLimiter


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


async def test_an_entry_lives_exactly_its_ttl(clock: ManualClock) -> None:
    cache = InMemoryCache(clock)
    await cache.set("k", "v", 10)
    clock.advance(9.999999)
    assert await cache.get("k") == "v"
    clock.advance(0.000001)
    assert await cache.get("k") is None


async def test_incr_keeps_the_ttl_it_was_created_with(clock: ManualClock) -> None:
    cache = InMemoryCache(clock)
    assert await cache.incr("n", ttl_seconds=10) == 1
    clock.advance(9)
    assert await cache.incr("n", ttl_seconds=10) == 2  # does not push the expiry
    clock.advance(1)
    assert await cache.get("n") is None
    assert await cache.incr("n", ttl_seconds=10) == 1


async def test_least_recently_used_entries_are_evicted_first(clock: ManualClock) -> None:
    cache = InMemoryCache(clock, max_entries=3)
    for key in "abc":
        await cache.set(key, key, 60)
    assert await cache.get("a") == "a"  # now the most recently used
    await cache.set("d", "d", 60)
    assert await cache.get_many(["a", "b", "c", "d"]) == {"a": "a", "c": "c", "d": "d"}


async def test_an_evicted_tag_version_makes_its_entries_miss(clock: ManualClock) -> None:
    cache = InMemoryCache(clock, max_entries=3)
    await cache.set("a", 1, 60, tags=["t1"])
    await cache.set("b", 2, 60, tags=["t2", "t3", "t4"])  # a fourth tag pushes out t1
    assert await cache.get("b") == 2
    assert await cache.get("a") is None  # its tag's version is gone: a miss, not stale
    await cache.set("a", 1, 60, tags=["t1"])
    assert await cache.get("a") == 1


def test_max_entries_must_be_positive(clock: ManualClock) -> None:
    with pytest.raises(ValueError):
        InMemoryCache(clock, max_entries=0)


async def test_a_burst_gets_the_limit_then_one_unit_per_interval(clock: ManualClock) -> None:
    limiter = InMemoryRateLimiter(clock)  # 10 per 10 s: one unit a second
    burst = [await limiter.hit("k", 10, 10) for _ in range(11)]
    assert [d.allowed for d in burst] == [True] * 10 + [False]
    assert [d.remaining for d in burst] == [*range(9, -1, -1), 0]
    denied = burst[10]
    assert denied.retry_after_seconds == 1 and denied.reset_after_seconds == 10

    clock.advance(0.999999)  # microsecond precision on the injected clock
    assert not (await limiter.hit("k", 10, 10)).allowed
    clock.advance(0.000001)
    refill = await limiter.hit("k", 10, 10)
    assert refill.allowed and refill.remaining == 0 and refill.reset_after_seconds == 10

    clock.advance(10)  # idle for the window: the whole limit is back
    again = [await limiter.hit("k", 10, 10) for _ in range(11)]
    assert [d.allowed for d in again] == [True] * 10 + [False]


async def test_retry_after_accounts_for_the_cost(clock: ManualClock) -> None:
    limiter = InMemoryRateLimiter(clock)  # 10 per 60 s: a unit every 6 s
    await limiter.hit("k", 10, 60, cost=3)  # t=0: full again at 18
    clock.advance(10)
    await limiter.hit("k", 10, 60, cost=3)  # t=10: at 36
    clock.advance(10)
    full = await limiter.hit("k", 10, 60, cost=4)  # t=20: at 60
    assert full.allowed and full.remaining == 3
    denied = await limiter.hit("k", 10, 60, cost=5)  # would reach 90: 10 s too far
    assert not denied.allowed and denied.remaining == 3
    assert denied.retry_after_seconds == 10
    clock.advance(9.5)
    assert not (await limiter.hit("k", 10, 60, cost=5)).allowed
    clock.advance(0.5)
    assert (await limiter.hit("k", 10, 60, cost=5)).allowed


async def test_idle_keys_are_forgotten(clock: ManualClock) -> None:
    limiter = InMemoryRateLimiter(clock)
    for i in range(100):
        await limiter.hit(f"client:{i}", 5, 60)
    clock.advance(60)
    await limiter.hit("someone-else", 5, 60)
    assert set(limiter._arrivals) == {("someone-else", 60)}
