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


async def test_the_window_slides_with_microsecond_precision(clock: ManualClock) -> None:
    limiter = InMemoryRateLimiter(clock)
    for _ in range(5):
        assert (await limiter.hit("k", 10, 10)).allowed
    clock.advance(5)
    for _ in range(5):
        assert (await limiter.hit("k", 10, 10)).allowed

    clock.advance(4.999999)
    denied = await limiter.hit("k", 10, 10)
    assert not denied.allowed
    assert denied.retry_after_seconds == pytest.approx(0.000001)
    assert denied.reset_after_seconds == pytest.approx(5.000001)

    clock.advance(0.000001)  # the first five leave the window together
    decisions = [await limiter.hit("k", 10, 10) for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert decisions[4].remaining == 0
    assert decisions[4].reset_after_seconds == 10
    assert decisions[5].retry_after_seconds == 5  # when the second five leave


async def test_retry_after_accounts_for_the_cost(clock: ManualClock) -> None:
    limiter = InMemoryRateLimiter(clock)
    await limiter.hit("k", 10, 60, cost=3)  # t=0
    clock.advance(10)
    await limiter.hit("k", 10, 60, cost=3)  # t=10
    clock.advance(10)
    await limiter.hit("k", 10, 60, cost=4)  # t=20: full
    denied = await limiter.hit("k", 10, 60, cost=5)  # needs the first two hits gone
    assert not denied.allowed
    assert denied.retry_after_seconds == 50  # at t=70, when the t=10 hit leaves
    clock.advance(49.5)
    assert not (await limiter.hit("k", 10, 60, cost=5)).allowed
    clock.advance(0.5)
    assert (await limiter.hit("k", 10, 60, cost=5)).allowed


async def test_idle_keys_are_forgotten(clock: ManualClock) -> None:
    limiter = InMemoryRateLimiter(clock)
    for i in range(100):
        await limiter.hit(f"client:{i}", 5, 60)
    clock.advance(60)
    await limiter.hit("someone-else", 5, 60)
    assert set(limiter._logs) == {("someone-else", 60)}
