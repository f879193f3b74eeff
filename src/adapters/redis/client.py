"""Building Redis clients, and turning Redis failures into core errors."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError

from core.shared.errors import UnavailableError

DEPENDENCY = "redis"


def create_redis(
    url: str,
    *,
    db: int | None = None,
    connect_timeout: float = 2.0,
    socket_timeout: float = 2.0,
    max_connections: int = 50,
    health_check_interval: int = 30,
) -> aioredis.Redis:
    """An asyncio Redis client with bounded waits everywhere; the caller closes it.

    - `db` overrides any database number in `url` (path or `?db=`).
    - `connect_timeout` bounds opening a connection and also waiting for a free one when
      all `max_connections` are busy (the pool blocks instead of failing at once, but
      never for longer than that); `socket_timeout` bounds every read and write.
    - A dropped connection is retried once after a short backoff (a server restart
      leaves stale pooled connections); timeouts are not retried, so a stalled server
      costs a caller at most about one `socket_timeout`.
    - Responses are bytes (`decode_responses=False`); adapters decode what they read.
    - Connections idle for `health_check_interval` seconds are PINGed before reuse.

    Close it with `await client.aclose()`, which also closes its pool.
    """
    if connect_timeout <= 0 or socket_timeout <= 0:
        raise ValueError("Redis timeouts must be positive")
    if max_connections < 1:
        raise ValueError("max_connections must be at least 1")
    pool = aioredis.BlockingConnectionPool.from_url(
        _with_db(url, db),
        max_connections=max_connections,
        timeout=connect_timeout,
        socket_connect_timeout=connect_timeout,
        socket_timeout=socket_timeout,
        health_check_interval=health_check_interval,
        retry=Retry(
            ExponentialWithJitterBackoff(base=0.05, cap=0.25),
            retries=1,
            supported_errors=(RedisConnectionError,),
        ),
        decode_responses=False,
    )
    return aioredis.Redis.from_pool(pool)


@asynccontextmanager
async def translate_errors(dependency: str = DEPENDENCY) -> AsyncIterator[None]:
    """Re-raise Redis driver and socket failures as `UnavailableError(dependency=...)`.

    Use as `async with translate_errors(): ...` or as a decorator
    (`@translate_errors()`). The original exception is chained as `__cause__` for logs;
    the error's detail names no host, key or command.
    """
    try:
        yield
    except (RedisError, OSError) as exc:
        # OSError covers socket errors and the builtin TimeoutError that some driver
        # paths let through without wrapping them in a RedisError.
        raise UnavailableError("Redis is unavailable.", dependency=dependency) from exc


def _with_db(url: str, db: int | None) -> str:
    # A `db` query parameter wins over the path and over keyword arguments in redis-py,
    # so expressing the override as that parameter makes it win everywhere.
    if db is None:
        return url
    if db < 0:
        raise ValueError("the Redis database number must not be negative")
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "db"]
    query.append(("db", str(db)))
    return urlunsplit(parts._replace(query=urlencode(query)))


class LuaScript:
    """A Lua script run by its SHA-1 (EVALSHA), loaded on the first `NOSCRIPT` answer.

    What redis-py's `register_script` does, minus two costs it adds to every call (an
    `isinstance` against a Protocol-derived class and a deprecation-checking wrapper
    around `evalsha`), which were a tenth of a rate-limited request's time: the scripts
    here run on every request.
    """

    __slots__ = ("_client", "sha", "source")

    def __init__(self, client: aioredis.Redis, source: str) -> None:
        self._client = client
        self.source = source
        self.sha = hashlib.sha1(source.encode("utf-8"), usedforsecurity=False).hexdigest()

    async def __call__(
        self, keys: Sequence[str] = (), args: Sequence[str | int | float] = ()
    ) -> Any:
        try:
            return await self._client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:
            # A new or flushed server: load it, then run it (the SHA is the same).
            await self._client.execute_command("SCRIPT", "LOAD", self.source)
            return await self._client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
