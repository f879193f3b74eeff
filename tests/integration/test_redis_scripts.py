"""`LuaScript`: runs by SHA-1, loading the script on the server's first NOSCRIPT."""

from __future__ import annotations

import uuid

import pytest
from redis.exceptions import ResponseError

from adapters.redis.client import LuaScript, create_redis

pytestmark = pytest.mark.integration


async def test_an_unknown_script_is_loaded_then_run_by_its_sha(redis_url: str) -> None:
    client = create_redis(redis_url)
    # A source no server has seen: its first call must take the NOSCRIPT path.
    script = LuaScript(client, f"-- {uuid.uuid4().hex}\nreturn {{KEYS[1], ARGV[1], ARGV[2]}}")
    try:
        assert await client.script_exists(script.sha) == [False]
        assert await script(keys=["k"], args=["a", 7]) == [b"k", b"a", b"7"]
        assert await client.script_exists(script.sha) == [True]
        assert await script(args=["b", 8], keys=["j"]) == [b"j", b"b", b"8"]
    finally:
        await client.aclose()


async def test_a_script_error_is_the_servers(redis_url: str) -> None:
    client = create_redis(redis_url)
    script = LuaScript(client, f"-- {uuid.uuid4().hex}\nreturn redis.call('NOSUCHCOMMAND')")
    try:
        with pytest.raises(ResponseError, match=r"(?i)unknown"):
            await script()
    finally:
        await client.aclose()
