"""Memcached key escaping, server parsing, client settings and error translation,
without a server."""

from __future__ import annotations

import pytest
from pymemcache.exceptions import (
    MemcacheClientError,
    MemcacheServerError,
    MemcacheUnexpectedCloseError,
)

from adapters.memcached.cache import MemcachedCache
from adapters.memcached.client import (
    NotACounterError,
    create_memcached,
    parse_server,
    translate_errors,
)
from adapters.memcached.keys import MAX_KEY_LENGTH, check_prefix, memcached_key
from adapters.memcached.rate_limit import MemcachedRateLimiter
from adapters.threads import ThreadOffload
from core.shared.errors import UnavailableError


def _legal(key: str) -> bool:
    raw = key.encode("ascii")
    return len(raw) <= MAX_KEY_LENGTH and all(0x21 <= b <= 0x7E for b in raw)


@pytest.mark.parametrize(
    "name",
    ["plain", "a b", "tab\there", "nl\n", "nul\x00", "del\x7f", "ünï", "鍵", "#x", "x" * 1000, ""],
)
def test_every_name_becomes_a_legal_key(name: str) -> None:
    assert _legal(memcached_key("p:", "k:", name))


def test_plain_names_stay_readable_and_others_are_hashed_without_collisions() -> None:
    assert memcached_key("p:", "k:", "user:42") == "p:k:user:42"
    hashed = memcached_key("p:", "k:", "a b")
    assert hashed.startswith("p:k:#") and len(hashed) == len("p:k:#") + 64
    # The readable spelling of a hashed key is itself hashed, so they never meet.
    assert memcached_key("p:", "k:", hashed.removeprefix("p:k:")) != hashed
    long_name = "x" * (MAX_KEY_LENGTH - 4)
    assert memcached_key("p:", "k:", long_name) == "p:k:" + long_name
    assert memcached_key("p:", "k:", long_name + "x").startswith("p:k:#")


@pytest.mark.parametrize("prefix", ["", "has space", "ctl\n", "ünï", "x" * 101])
def test_prefixes_must_be_plain_and_short(prefix: str) -> None:
    with pytest.raises(ValueError):
        check_prefix(prefix)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("127.0.0.1:11211", ("127.0.0.1", 11211)),
        (" cache.internal:11212 ", ("cache.internal", 11212)),
        ("cache", ("cache", 11211)),
        ("[::1]:11300", ("::1", 11300)),
        ("[::1]", ("::1", 11211)),
    ],
)
def test_parse_server(spec: str, expected: tuple[str, int]) -> None:
    assert parse_server(spec) == expected


@pytest.mark.parametrize("spec", ["host:port", "host:0", "host:70000", ":11211", "[::1]:x"])
def test_parse_server_refuses_nonsense(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_server(spec)


@pytest.mark.parametrize(
    "kwargs",
    [{"connect_timeout": 0}, {"timeout": -1}, {"max_pool_size": 0}],
)
def test_create_memcached_refuses_unbounded_or_invalid_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        create_memcached(["127.0.0.1:11211"], **kwargs)  # type: ignore[arg-type]


def test_create_memcached_needs_a_server() -> None:
    with pytest.raises(ValueError):
        create_memcached(" , ")


def test_adapters_refuse_more_threads_than_connections() -> None:
    client = create_memcached("127.0.0.1:11211,127.0.0.1:11212", max_pool_size=4)
    with pytest.raises(ValueError):
        MemcachedCache(client, offload=ThreadOffload(8))
    with pytest.raises(ValueError):
        MemcachedRateLimiter(client, offload=ThreadOffload(8))
    with pytest.raises(ValueError):
        MemcachedCache(client, key_prefix="bad prefix", offload=ThreadOffload(4))


def test_keys_spread_over_several_servers() -> None:
    client = create_memcached(["10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211"])
    servers = {client._server_of(f"key-{i}") for i in range(300)}
    assert servers == {"10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211"}
    assert client._server_of("stable") == client._server_of("stable")


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connection refused"),
        ConnectionResetError(104, "Connection reset by peer"),
        TimeoutError("no free Memcached connection in time"),
        MemcacheUnexpectedCloseError(),
        MemcacheServerError(b"out of memory storing object"),
        MemcacheClientError(b"bad command line format"),
    ],
)
async def test_driver_failures_become_unavailable(error: Exception) -> None:
    with pytest.raises(UnavailableError) as caught:
        async with translate_errors("cache"):
            raise error
    assert caught.value.dependency == "cache"
    assert caught.value.__cause__ is error


async def test_value_errors_and_bugs_pass_through() -> None:
    with pytest.raises(NotACounterError):
        async with translate_errors("cache"):
            raise NotACounterError("not a counter")
    with pytest.raises(KeyError):
        async with translate_errors("cache"):
            raise KeyError("a bug, not an outage")
