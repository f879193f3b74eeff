"""The Cache contract, run against every adapter of the port (memory, Redis, Memcached).

Each test gets a `Harness`: the cache, a way to let time pass and, on the servers, a way
to open another cache on the same client (so the same server) under another prefix. In
memory time is a ManualClock that jumps; on the servers it is a short real sleep, because
they expire keys by their own clocks. Memcached counts TTLs in whole seconds and may
expire an entry up to a second early, so the suite only asserts that 1-second entries
are gone after a little more than a second, and that long-lived ones are still there.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager as AsyncContextManager
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import MappingProxyType

import pytest

from adapters.memcached.cache import MemcachedCache
from adapters.memcached.client import create_memcached
from adapters.memory.cache import InMemoryCache
from adapters.memory.clock import ManualClock
from adapters.redis.cache import RedisCache
from adapters.redis.client import create_redis
from adapters.threads import ThreadOffload
from core.platform.cache import (
    MAX_KEY_BYTES,
    MAX_TAGS,
    MAX_TTL_SECONDS,
    MAX_VALUE_BYTES,
    Cache,
    CacheValueTooLargeError,
)

# Past a 1-second TTL everywhere (Memcached rounds to whole seconds, early not late).
PAST_ONE_SECOND = 1.1
LONG = 60  # seconds: "does not expire during the test", and gone soon after it


@dataclass
class Harness:
    cache: Cache
    advance: Callable[[float], Awaitable[None]]
    # Another cache on the same client and server, its prefix this one's plus the suffix
    # given ("" gives the same prefix). None in memory: an instance is its own namespace.
    other: Callable[[str], Cache] | None = None


@asynccontextmanager
async def _memory() -> AsyncIterator[Harness]:
    clock = ManualClock()

    async def advance(seconds: float) -> None:
        clock.advance(seconds)

    yield Harness(InMemoryCache(clock), advance)


@asynccontextmanager
async def _redis(url: str, prefix: str) -> AsyncIterator[Harness]:
    client = create_redis(url)
    try:
        yield Harness(
            RedisCache(client, key_prefix=prefix),
            asyncio.sleep,
            lambda suffix: RedisCache(client, key_prefix=prefix + suffix),
        )
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@asynccontextmanager
async def _memcached(servers: list[str], prefix: str) -> AsyncIterator[Harness]:
    # Memcached cannot list keys: tests keep TTLs short (LONG at most) or delete what
    # they create without one, and the prefix is unique to the test.
    client = create_memcached(servers, max_pool_size=16)
    offload = ThreadOffload(16)
    try:
        yield Harness(
            MemcachedCache(client, key_prefix=prefix, offload=offload),
            asyncio.sleep,
            lambda suffix: MemcachedCache(client, key_prefix=prefix + suffix, offload=offload),
        )
    finally:
        client.close()


def _harness(request: pytest.FixtureRequest, key_prefix: str) -> AsyncContextManager[Harness]:
    if request.param == "memory":
        return _memory()
    if request.param == "redis":
        return _redis(request.getfixturevalue("redis_url"), key_prefix)
    return _memcached(request.getfixturevalue("memcached_servers"), key_prefix)


SERVERS = [
    pytest.param("redis", marks=pytest.mark.integration),
    pytest.param("memcached", marks=pytest.mark.integration),
]


@pytest.fixture(params=["memory", *SERVERS])
async def h(request: pytest.FixtureRequest, key_prefix: str) -> AsyncIterator[Harness]:
    async with _harness(request, key_prefix) as harness:
        yield harness


@pytest.fixture(params=SERVERS)
async def on_server(request: pytest.FixtureRequest, key_prefix: str) -> AsyncIterator[Harness]:
    """The adapters that have prefixes: several caches on one server (one client)."""
    async with _harness(request, key_prefix) as harness:
        yield harness


NESTED = {
    "name": 'Zoë 🚀 "quoted" \\ back\nslash',
    "count": 3,
    "big": 2**62 + 1,
    "ratio": 0.1,
    "negative": -1.5e-7,
    "flags": [True, False, None],
    "empty": {"list": [], "object": {}, "string": ""},
    "deep": {"a": [{"b": [[1, 2], {"c": "d"}]}]},
}


async def test_json_values_round_trip_exactly(h: Harness) -> None:
    values = [NESTED, [1, "two", 3.0, None, [NESTED]], "plain", "", 0, -7, 2.5, True, False]
    for index, value in enumerate(values):
        await h.cache.set(f"v{index}", value, LONG)
    for index, value in enumerate(values):
        got = await h.cache.get(f"v{index}")
        assert got == value and type(got) is type(value), index


async def test_tuples_and_other_mappings_come_back_as_lists_and_dicts(h: Harness) -> None:
    await h.cache.set("t", {"pair": (1, 2), "view": MappingProxyType({"k": (3,)})}, LONG)
    assert await h.cache.get("t") == {"pair": [1, 2], "view": {"k": [3]}}


async def test_get_returns_fresh_copies(h: Harness) -> None:
    await h.cache.set("doc", {"items": [1, 2]}, LONG)
    first = await h.cache.get("doc")
    assert isinstance(first, dict) and isinstance(first["items"], list)
    first["items"].append(3)
    assert await h.cache.get("doc") == {"items": [1, 2]}


async def test_missing_set_replace_and_idempotent_delete(h: Harness) -> None:
    assert await h.cache.get("k") is None
    await h.cache.set("k", "one", LONG)
    await h.cache.set("k", {"two": 2}, LONG)
    assert await h.cache.get("k") == {"two": 2}
    await h.cache.delete("k")
    assert await h.cache.get("k") is None
    await h.cache.delete("k")  # deleting nothing is fine
    await h.cache.delete("never-set")


async def test_a_stored_null_reads_as_none_and_get_many_reports_it(h: Harness) -> None:
    await h.cache.set("null", None, LONG)
    assert await h.cache.get("null") is None
    assert await h.cache.get_many(["null", "absent"]) == {"null": None}


async def test_get_many_returns_only_hits(h: Harness) -> None:
    await h.cache.set("a", 1, LONG)
    await h.cache.set("b", {"x": [2]}, LONG)
    await h.cache.incr("n", 5, ttl_seconds=LONG)
    assert await h.cache.get_many(["a", "b", "missing", "a", "n"]) == {
        "a": 1,
        "b": {"x": [2]},
        "n": 5,
    }
    assert await h.cache.get_many([]) == {}
    assert await h.cache.get_many(iter(["b"])) == {"b": {"x": [2]}}


async def test_entries_and_counters_expire_after_their_ttl(h: Harness) -> None:
    await h.cache.set("short", "x", 1)
    await h.cache.set("long", "y", LONG)
    assert await h.cache.incr("short-counter", ttl_seconds=1) == 1
    assert await h.cache.incr("forever-counter") == 1
    try:
        await h.advance(PAST_ONE_SECOND)

        assert await h.cache.get("short") is None
        assert await h.cache.get_many(["short", "long"]) == {"long": "y"}
        assert await h.cache.incr("short-counter", ttl_seconds=1) == 1  # created afresh
        assert await h.cache.incr("forever-counter") == 2
    finally:
        await h.cache.delete("forever-counter")


async def test_incr_creates_at_amount_and_is_atomic_under_50_concurrent_tasks(
    h: Harness,
) -> None:
    results = await asyncio.gather(*(h.cache.incr("hits", ttl_seconds=LONG) for _ in range(50)))
    assert sorted(results) == list(range(1, 51))  # every increment saw a distinct count
    assert await h.cache.get("hits") == 50
    assert await h.cache.incr("hits", 5) == 55
    assert await h.cache.incr("fresh", 7, ttl_seconds=LONG) == 7
    assert await h.cache.get("fresh") == 7


async def test_incr_continues_a_stored_integer_and_refuses_anything_else(h: Harness) -> None:
    await h.cache.set("int", 41, LONG)
    assert await h.cache.incr("int") == 42
    assert await h.cache.get("int") == 42

    others: dict[str, object] = {"str": "7", "float": 1.5, "negative": -3, "doc": {"n": 1}}
    for key, value in others.items():
        await h.cache.set(key, value, LONG)  # type: ignore[arg-type]
    await h.cache.set("tagged", 3, LONG, tags=["t"])
    for key in [*others, "tagged"]:
        with pytest.raises(ValueError):
            await h.cache.incr(key)
    for key, value in others.items():
        assert await h.cache.get(key) == value
    assert await h.cache.get("tagged") == 3


async def test_invalidating_a_tag_misses_every_entry_carrying_it(h: Harness) -> None:
    await h.cache.set("a", "A", LONG, tags=["x"])
    await h.cache.set("b", "B", LONG, tags=["x", "y"])
    await h.cache.set("c", "C", LONG, tags=["y"])
    await h.cache.set("d", "D", LONG)
    assert await h.cache.get_many(["a", "b", "c", "d"]) == {"a": "A", "b": "B", "c": "C", "d": "D"}

    await h.cache.invalidate_tag("x")
    assert await h.cache.get("a") is None
    assert await h.cache.get("b") is None
    assert await h.cache.get_many(["a", "b", "c", "d"]) == {"c": "C", "d": "D"}

    await h.cache.set("a", "A2", LONG, tags=["x"])  # written after: valid again
    assert await h.cache.get("a") == "A2"
    await h.cache.invalidate_tag("y")
    assert await h.cache.get_many(["a", "b", "c", "d"]) == {"a": "A2", "d": "D"}

    await h.cache.invalidate_tag("nobody-uses-this")
    assert await h.cache.get("a") == "A2"


async def test_set_replaces_an_entry_with_its_tags(h: Harness) -> None:
    await h.cache.set("k", 1, LONG, tags=["old"])
    await h.cache.set("k", 2, LONG, tags=["new", "new"])  # duplicates are fine
    await h.cache.invalidate_tag("old")
    assert await h.cache.get("k") == 2
    await h.cache.invalidate_tag("new")
    assert await h.cache.get("k") is None


async def test_many_tags_on_one_entry(h: Harness) -> None:
    tags = [f"tag-{i}" for i in range(MAX_TAGS)]
    await h.cache.set("k", "v", LONG, tags=tags)
    assert await h.cache.get("k") == "v"
    await h.cache.invalidate_tag(tags[-1])
    assert await h.cache.get("k") is None


async def test_any_key_and_tag_within_the_limit_is_usable_and_distinct(h: Harness) -> None:
    keys = [
        "plain",
        "with space",
        "with\nnewline\tand\x00nul",
        "ünïcödé ключ 鍵",
        "#hash",
        "#" + hashlib.sha256(b"with space").hexdigest(),  # the hashed form of another key
        "k:t:",
        "x" * MAX_KEY_BYTES,
        "x" * (MAX_KEY_BYTES - 1) + "y",
        "é" * (MAX_KEY_BYTES // 2),
    ]
    for index, key in enumerate(keys):
        await h.cache.set(key, index, LONG, tags=[key[:60]])
    assert await h.cache.get_many(keys) == {key: i for i, key in enumerate(keys)}
    await h.cache.invalidate_tag("with space")
    assert await h.cache.get("with space") is None
    assert await h.cache.get("#" + hashlib.sha256(b"with space").hexdigest()) == 5


async def test_prefixes_isolate_caches_on_one_server(on_server: Harness) -> None:
    mine, theirs = on_server.cache, _other(on_server, "other:")
    await mine.set("k", "mine", LONG, tags=["t"])
    await theirs.set("k", "theirs", LONG, tags=["t"])
    assert await mine.get("k") == "mine" and await theirs.get("k") == "theirs"
    await mine.set("only-mine", 1, LONG)
    assert await theirs.get_many(["only-mine", "k"]) == {"k": "theirs"}
    assert await theirs.incr("only-mine") == 1  # a counter of its own, not 2
    await theirs.invalidate_tag("t")
    assert await theirs.get("k") is None
    assert await mine.get("k") == "mine"
    await theirs.delete("only-mine")
    await theirs.delete("k")
    assert await mine.get_many(["k", "only-mine"]) == {"k": "mine", "only-mine": 1}


async def test_caches_with_the_same_prefix_on_one_server_share_everything(
    on_server: Harness,
) -> None:
    # The control of the test above: the same calls through a second cache with the
    # same prefix on the same server do reach the first cache's entries.
    mine, twin = on_server.cache, _other(on_server, "")
    await mine.set("k", "mine", LONG, tags=["t"])
    await mine.set("only-mine", 1, LONG)
    assert await twin.get_many(["only-mine", "k"]) == {"k": "mine", "only-mine": 1}
    assert await twin.incr("only-mine") == 2
    await twin.invalidate_tag("t")
    assert await mine.get("k") is None
    await twin.delete("only-mine")
    assert await mine.get("only-mine") is None


def _other(harness: Harness, suffix: str) -> Cache:
    assert harness.other is not None
    return harness.other(suffix)


class _Opaque:
    pass


def _nested(depth: int) -> object:
    value: object = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def _cycle() -> object:
    loop: list[object] = []
    loop.append(loop)
    return loop


@pytest.mark.parametrize(
    "value",
    [
        {1: "integer key"},
        {"set": {1, 2}},
        b"bytes",
        float("nan"),
        float("inf"),
        [1.0, float("-inf")],
        _Opaque(),
        "\ud800",
        _nested(100),
        _cycle(),
    ],
    ids=[
        "int-key",
        "set",
        "bytes",
        "nan",
        "inf",
        "nested-inf",
        "object",
        "surrogate",
        "too-deep",
        "cycle",
    ],
)
async def test_values_that_are_not_json_raise_value_error_and_write_nothing(
    h: Harness, value: object
) -> None:
    await h.cache.set("k", "before", LONG)
    with pytest.raises(ValueError):
        await h.cache.set("k", value, LONG)  # type: ignore[arg-type]
    assert await h.cache.get("k") == "before"


async def test_a_value_too_large_raises_its_own_value_error(h: Harness) -> None:
    with pytest.raises(CacheValueTooLargeError):
        await h.cache.set("big", "x" * MAX_VALUE_BYTES, LONG)
    # Many small nodes count too, before the whole thing is encoded.
    with pytest.raises(CacheValueTooLargeError):
        await h.cache.set("wide", [0] * MAX_VALUE_BYTES, LONG)
    just_fits = "x" * (MAX_VALUE_BYTES - 2)  # plus two quotes
    await h.cache.set("fits", just_fits, LONG)
    assert await h.cache.get("fits") == just_fits
    assert await h.cache.get("big") is None


async def test_bad_keys_tags_ttls_and_amounts_raise_value_error(h: Harness) -> None:
    c = h.cache
    bad_calls: list[Callable[[], Awaitable[object]]] = [
        lambda: c.get(""),
        lambda: c.get("x" * (MAX_KEY_BYTES + 1)),
        lambda: c.get("é" * (MAX_KEY_BYTES // 2 + 1)),
        lambda: c.get(42),  # type: ignore[arg-type]
        lambda: c.get("\udcff"),
        lambda: c.get_many("abc"),
        lambda: c.get_many(["ok", ""]),
        lambda: c.set("k", 1, 0),
        lambda: c.set("k", 1, -5),
        lambda: c.set("k", 1, MAX_TTL_SECONDS + 1),
        lambda: c.set("k", 1, 1.5),  # type: ignore[arg-type]
        lambda: c.set("k", 1, True),
        lambda: c.set("k", 1, LONG, tags="abc"),
        lambda: c.set("k", 1, LONG, tags=[""]),
        lambda: c.set("k", 1, LONG, tags=["x" * 129]),
        lambda: c.set("k", 1, LONG, tags=[f"t{i}" for i in range(MAX_TAGS + 1)]),
        lambda: c.delete(""),
        lambda: c.incr("k", 0),
        lambda: c.incr("k", -1),
        lambda: c.incr("k", 2**32 + 1),
        lambda: c.incr("k", ttl_seconds=0),
        lambda: c.invalidate_tag(""),
    ]
    for index, call in enumerate(bad_calls):
        with pytest.raises(ValueError):
            await call()
        assert await c.get("k") is None, index


async def test_ping_answers(h: Harness) -> None:
    await h.cache.ping()
