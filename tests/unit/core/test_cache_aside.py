"""CacheAside: read-through caching that survives a cache outage and never caches failures."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import pytest

from adapters.memory.cache import InMemoryCache
from adapters.memory.clock import ManualClock
from core.platform.cache import MAX_VALUE_BYTES, Cache, JsonInput, JsonValue
from core.platform.cache_aside import CacheAside, CacheCodec, cached
from core.shared.errors import UnavailableError


class FlakyCache(Cache):
    """An in-memory cache that can be switched off, counting the calls that reach it."""

    def __init__(self) -> None:
        self.inner = InMemoryCache(ManualClock())
        self.down = False
        self.calls: list[str] = []

    def _reach(self, name: str) -> None:
        self.calls.append(name)
        if self.down:
            raise UnavailableError("cache down", dependency="cache")

    async def get(self, key: str) -> JsonValue:
        self._reach("get")
        return await self.inner.get(key)

    async def get_many(self, keys: Iterable[str]) -> dict[str, JsonValue]:
        self._reach("get_many")
        return await self.inner.get_many(keys)

    async def set(
        self, key: str, value: JsonInput, ttl_seconds: int, *, tags: Iterable[str] = ()
    ) -> None:
        self._reach("set")
        await self.inner.set(key, value, ttl_seconds, tags=tags)

    async def delete(self, key: str) -> None:
        self._reach("delete")
        await self.inner.delete(key)

    async def incr(self, key: str, amount: int = 1, ttl_seconds: int | None = None) -> int:
        self._reach("incr")
        return await self.inner.incr(key, amount, ttl_seconds)

    async def invalidate_tag(self, tag: str) -> None:
        self._reach("invalidate_tag")
        await self.inner.invalidate_tag(tag)

    async def ping(self) -> None:
        self._reach("ping")


class Loader:
    def __init__(self, *results: object) -> None:
        self.results = list(results)
        self.calls = 0

    async def __call__(self) -> JsonInput:
        self.calls += 1
        result = self.results.pop(0)
        if isinstance(result, Exception):
            raise result
        return result  # type: ignore[return-value]


async def test_a_miss_loads_and_stores_and_a_hit_does_not_load() -> None:
    cache = FlakyCache()
    load = Loader({"plan": "pro"})
    aside = CacheAside(cache)

    assert await aside.get_or_load("tier:1", 60, load) == {"plan": "pro"}
    assert await aside.get_or_load("tier:1", 60, load) == {"plan": "pro"}
    assert load.calls == 1
    assert await cache.inner.get("tier:1") == {"plan": "pro"}


async def test_a_cache_that_is_down_falls_through_to_the_loader() -> None:
    cache = FlakyCache()
    cache.down = True
    load = Loader([1, 2], [3])

    assert await cached(cache, "k", 60, load) == [1, 2]
    assert await cached(cache, "k", 60, load) == [3]  # no cache: every call loads
    assert load.calls == 2
    assert cache.calls == ["get", "set", "get", "set"]

    cache.down = False
    assert await cached(cache, "k", 60, Loader("fresh")) == "fresh"
    assert await cache.inner.get("k") == "fresh"


class WriteFails(FlakyCache):
    async def set(
        self, key: str, value: JsonInput, ttl_seconds: int, *, tags: Iterable[str] = ()
    ) -> None:
        raise UnavailableError(dependency="cache")


async def test_a_cache_that_fails_only_on_write_still_returns_the_value() -> None:
    cache = WriteFails()
    load = Loader("v", "v again")
    assert await cached(cache, "k", 60, load) == "v"
    assert await cached(cache, "k", 60, load) == "v again"
    assert await cache.inner.get("k") is None


async def test_loader_errors_propagate_and_are_not_cached() -> None:
    cache = FlakyCache()
    load = Loader(RuntimeError("database down"), "recovered")

    with pytest.raises(RuntimeError, match="database down"):
        await cached(cache, "k", 60, load)
    assert await cache.inner.get("k") is None
    assert cache.calls == ["get"]  # nothing was written

    assert await cached(cache, "k", 60, load) == "recovered"
    assert load.calls == 2


async def test_loader_errors_propagate_when_the_cache_is_down_too() -> None:
    cache = FlakyCache()
    cache.down = True
    with pytest.raises(KeyError):
        await cached(cache, "k", 60, Loader(KeyError("missing")))


async def test_none_is_returned_but_never_cached() -> None:
    cache = FlakyCache()
    load = Loader(None, None)
    assert await cached(cache, "k", 60, load) is None
    assert await cached(cache, "k", 60, load) is None
    assert load.calls == 2
    assert "set" not in cache.calls


async def test_falsy_values_are_cached_hits() -> None:
    cache = FlakyCache()
    for key, value in {"zero": 0, "false": False, "empty": "", "list": []}.items():
        load = Loader(value)
        assert await cached(cache, key, 60, load) == value
        assert await cached(cache, key, 60, load) == value
        assert load.calls == 1, key


async def test_hits_and_misses_look_the_same() -> None:
    cache = FlakyCache()
    load = Loader({"pair": (1, 2)})
    miss = await cached(cache, "k", 60, load)
    hit = await cached(cache, "k", 60, load)
    assert miss == hit == {"pair": [1, 2]}


async def test_tags_reach_the_cache() -> None:
    cache = FlakyCache()
    load = Loader("v1", "v2")
    assert await cached(cache, "k", 60, load, tags=["user:1"]) == "v1"
    await cache.invalidate_tag("user:1")
    assert await cached(cache, "k", 60, load, tags=["user:1"]) == "v2"


async def test_a_value_too_large_is_served_uncached(caplog: pytest.LogCaptureFixture) -> None:
    cache = FlakyCache()
    big = "x" * MAX_VALUE_BYTES
    with caplog.at_level(logging.WARNING):
        assert await cached(cache, "k", 60, Loader(big)) == big
    assert "set" not in cache.calls
    assert "too large" in caplog.text


async def test_a_value_that_is_not_json_is_a_bug_and_raises() -> None:
    cache = FlakyCache()
    with pytest.raises(ValueError):
        await cached(cache, "k", 60, Loader({1, 2}))
    cache.down = True
    with pytest.raises(ValueError):
        await cached(cache, "k", 60, Loader({1, 2}))


async def test_bad_arguments_raise_even_when_the_cache_is_down() -> None:
    cache = FlakyCache()
    cache.down = True
    for key, ttl in [("", 60), ("k", 0)]:
        with pytest.raises(ValueError):
            await cached(cache, key, ttl, Loader("v"))


@dataclass(frozen=True)
class Tier:
    code: str
    credits: int


def _decode_tier(document: JsonValue) -> Tier:
    if not isinstance(document, dict):
        raise TypeError("not a tier")
    return Tier(**document)  # type: ignore[arg-type]


TIER_CODEC = CacheCodec[Tier](encode=asdict, decode=_decode_tier)


async def test_a_codec_turns_objects_into_json_and_back() -> None:
    cache = FlakyCache()
    aside = CacheAside(cache)
    load = Loader(Tier("pro", 1000))

    miss = await aside.get_or_load("tier:pro", 60, load, codec=TIER_CODEC)
    hit = await aside.get_or_load("tier:pro", 60, load, codec=TIER_CODEC)
    assert miss == hit == Tier("pro", 1000)
    assert await cache.inner.get("tier:pro") == {"code": "pro", "credits": 1000}
    assert load.calls == 1


async def test_an_entry_the_codec_no_longer_understands_is_reloaded() -> None:
    cache = FlakyCache()
    await cache.inner.set("tier:pro", {"name": "pro"}, 60)  # written by an older release
    load = Loader(Tier("pro", 5))
    aside = CacheAside(cache)

    got = await aside.get_or_load("tier:pro", 60, load, codec=TIER_CODEC)
    assert got == Tier("pro", 5)
    assert await cache.inner.get("tier:pro") == {"code": "pro", "credits": 5}
