"""The RateLimiter contract, run against every adapter (memory, Redis, Memcached).

Each test gets a `Harness`: two limiters sharing one backend (two processes, as far as
the limiter can tell; in memory the same instance twice), a way to let time pass, and
`start_of_window`, which waits for a fresh fixed window on Memcached (its windows are
aligned to the clock, and a burst straddling a boundary is legitimately counted in
two windows) and does nothing on the sliding-window adapters.

Timing tests use 1-second windows so the server runs sleep about a second; the others
use an hour, so no window boundary falls inside them in practice.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

from adapters.memcached.client import create_memcached
from adapters.memcached.rate_limit import MemcachedRateLimiter
from adapters.memory.clock import ManualClock
from adapters.memory.rate_limit import InMemoryRateLimiter
from adapters.redis.client import create_redis
from adapters.redis.rate_limit import RedisRateLimiter
from adapters.threads import ThreadOffload
from core.platform.rate_limit import (
    MAX_KEY_BYTES,
    MAX_LIMIT,
    MAX_WINDOW_SECONDS,
    RateLimitDecision,
    RateLimiter,
)

HOUR = 3600
SLACK = 0.05  # seconds of real time added to waits on the servers


@dataclass
class Harness:
    limiter: RateLimiter
    peer: RateLimiter  # another client of the same backend
    advance: Callable[[float], Awaitable[None]]
    start_of_window: Callable[[int], Awaitable[None]]


async def _no_wait(_: int) -> None:
    return None


async def _sleep_past(seconds: float) -> None:
    await asyncio.sleep(seconds + SLACK)


async def _next_fixed_window(window: int) -> None:
    now = time.time()
    await asyncio.sleep(math.floor(now / window + 1) * window - now + SLACK)


@asynccontextmanager
async def _memory() -> AsyncIterator[Harness]:
    clock = ManualClock()

    async def advance(seconds: float) -> None:
        clock.advance(seconds)

    limiter = InMemoryRateLimiter(clock)
    yield Harness(limiter, limiter, advance, _no_wait)


@asynccontextmanager
async def _redis(url: str, prefix: str) -> AsyncIterator[Harness]:
    first, second = create_redis(url), create_redis(url)
    try:
        yield Harness(
            RedisRateLimiter(first, key_prefix=prefix),
            RedisRateLimiter(second, key_prefix=prefix),
            _sleep_past,
            _no_wait,
        )
    finally:
        keys = [key async for key in first.scan_iter(match=f"{prefix}*")]
        if keys:
            await first.delete(*keys)
        await first.aclose()
        await second.aclose()


@asynccontextmanager
async def _memcached(servers: list[str], prefix: str) -> AsyncIterator[Harness]:
    # Counters expire a second after their window; the hour-long ones are left to
    # expire (the prefix is unique to the test).
    first, second = create_memcached(servers), create_memcached(servers)
    try:
        yield Harness(
            MemcachedRateLimiter(first, key_prefix=prefix, offload=ThreadOffload(16)),
            MemcachedRateLimiter(second, key_prefix=prefix, offload=ThreadOffload(16)),
            _sleep_past,
            _next_fixed_window,
        )
    finally:
        first.close()
        second.close()


@pytest.fixture(
    params=[
        "memory",
        pytest.param("redis", marks=pytest.mark.integration),
        pytest.param("memcached", marks=pytest.mark.integration),
    ]
)
async def h(request: pytest.FixtureRequest, key_prefix: str) -> AsyncIterator[Harness]:
    if request.param == "memory":
        context = _memory()
    elif request.param == "redis":
        context = _redis(request.getfixturevalue("redis_url"), key_prefix)
    else:
        context = _memcached(request.getfixturevalue("memcached_servers"), key_prefix)
    async with context as harness:
        yield harness


async def _burst(h: Harness, key: str, limit: int, window: int, n: int) -> list[RateLimitDecision]:
    # Half the clients on each limiter: they share nothing but the backend.
    hits = [(h.limiter if i % 2 else h.peer).hit(key, limit, window) for i in range(n)]
    return list(await asyncio.gather(*hits))


def _check_burst(decisions: list[RateLimitDecision], limit: int, window: int) -> None:
    allowed = [d for d in decisions if d.allowed]
    denied = [d for d in decisions if not d.allowed]
    assert len(allowed) == limit
    # Each allowed hit saw a distinct count: the decisions were serialised.
    assert sorted(d.remaining for d in allowed) == list(range(limit))
    for d in decisions:
        assert d.limit == limit
        assert 0 < d.reset_after_seconds <= window
    for d in allowed:
        assert d.retry_after_seconds == 0
    for d in denied:
        assert d.remaining == 0
        assert 0 < d.retry_after_seconds <= window


async def test_50_concurrent_clients_get_exactly_the_limit_per_window_and_again_next_window(
    h: Harness,
) -> None:
    await h.start_of_window(1)
    first = await _burst(h, "burst", limit=10, window=1, n=50)
    _check_burst(first, limit=10, window=1)

    await h.advance(max(d.reset_after_seconds for d in first))
    second = await _burst(h, "burst", limit=10, window=1, n=50)
    _check_burst(second, limit=10, window=1)


async def test_a_denied_hit_is_allowed_once_retry_after_has_passed(h: Harness) -> None:
    await h.start_of_window(1)
    assert (await h.limiter.hit("retry", 2, 1)).allowed
    assert (await h.peer.hit("retry", 2, 1)).allowed
    denied = await h.limiter.hit("retry", 2, 1)
    assert not denied.allowed

    await h.advance(denied.retry_after_seconds)
    assert (await h.peer.hit("retry", 2, 1)).allowed


async def test_remaining_counts_down_and_reset_and_retry_are_within_the_window(
    h: Harness,
) -> None:
    decisions = [await h.limiter.hit("user:1", 3, HOUR) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert [d.limit for d in decisions] == [3, 3, 3, 3]
    for d in decisions:
        assert 0 < d.reset_after_seconds <= HOUR
    assert [d.retry_after_seconds for d in decisions[:3]] == [0, 0, 0]
    denied = decisions[3]
    assert 0 < denied.retry_after_seconds <= denied.reset_after_seconds


async def test_cost_counts_units_and_denied_hits_count_nothing(h: Harness) -> None:
    assert (await h.limiter.hit("tokens", 10, HOUR, cost=4)).remaining == 6
    assert (await h.peer.hit("tokens", 10, HOUR, cost=4)).remaining == 2
    too_much = await h.limiter.hit("tokens", 10, HOUR, cost=4)
    assert not too_much.allowed
    assert too_much.remaining == 2  # what is left for a smaller hit
    assert too_much.retry_after_seconds > 0
    last = await h.limiter.hit("tokens", 10, HOUR, cost=2)
    assert last.allowed and last.remaining == 0
    assert not (await h.peer.hit("tokens", 10, HOUR)).allowed


async def test_a_cost_equal_to_the_limit_fits_an_empty_window_only(h: Harness) -> None:
    assert (await h.limiter.hit("whole", 5, HOUR, cost=5)).allowed
    assert not (await h.limiter.hit("whole", 5, HOUR, cost=1)).allowed


async def test_keys_and_windows_are_independent(h: Harness) -> None:
    assert (await h.limiter.hit("a", 1, HOUR)).allowed
    assert not (await h.limiter.hit("a", 1, HOUR)).allowed
    assert (await h.limiter.hit("b", 1, HOUR)).allowed
    assert (await h.limiter.hit("a", 1, 2 * HOUR)).allowed  # another window: another limit


async def test_any_key_within_the_limit_is_usable_and_distinct(h: Harness) -> None:
    keys = [
        "login:ip:2001:db8::1",
        "login:email:Someone@Example.com",
        "with space",
        "ctrl\n\t\x00",
        "ünïcödé",
        "#x",
        "x" * MAX_KEY_BYTES,
        "x" * (MAX_KEY_BYTES - 1) + "y",
    ]
    for key in keys:
        assert (await h.limiter.hit(key, 1, HOUR)).allowed, key
    for key in keys:
        assert not (await h.peer.hit(key, 1, HOUR)).allowed, key


@pytest.mark.parametrize(
    ("key", "limit", "window", "cost"),
    [
        ("", 1, 1, 1),
        ("x" * (MAX_KEY_BYTES + 1), 1, 1, 1),
        ("\ud800", 1, 1, 1),
        (7, 1, 1, 1),
        ("k", 0, 1, 1),
        ("k", MAX_LIMIT + 1, 1, 1),
        ("k", 1.5, 1, 1),
        ("k", True, 1, 1),
        ("k", 1, 0, 1),
        ("k", 1, MAX_WINDOW_SECONDS + 1, 1),
        ("k", 1, 0.5, 1),
        ("k", 5, 1, 0),
        ("k", 5, 1, 6),
    ],
)
async def test_arguments_outside_the_contract_raise_value_error(
    h: Harness, key: object, limit: object, window: object, cost: object
) -> None:
    with pytest.raises(ValueError):
        await h.limiter.hit(key, limit, window, cost)  # type: ignore[arg-type]


async def test_ping_answers(h: Harness) -> None:
    await h.limiter.ping()
