"""Redis error translation and client construction, without a server."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from adapters.redis.client import create_redis, translate_errors
from core.shared.errors import UnavailableError


@pytest.mark.parametrize(
    "error",
    [
        RedisConnectionError("Error 111 connecting to 10.0.0.5:6379"),
        RedisTimeoutError("Timeout reading from socket"),
        ResponseError("LOADING Redis is loading the dataset in memory"),
        ConnectionResetError(104, "Connection reset by peer"),
        TimeoutError(),
    ],
)
async def test_driver_failures_become_unavailable(error: Exception) -> None:
    with pytest.raises(UnavailableError) as caught:
        async with translate_errors():
            raise error
    assert caught.value.dependency == "redis"
    assert caught.value.__cause__ is error
    assert "10.0.0.5" not in caught.value.detail  # no infrastructure details leak


async def test_translate_errors_works_as_a_decorator_and_passes_other_errors() -> None:
    @translate_errors(dependency="cache")
    async def broken(error: Exception) -> None:
        raise error

    with pytest.raises(UnavailableError) as caught:
        await broken(RedisConnectionError())
    assert caught.value.dependency == "cache"
    # Twice: the decorator must build a fresh context per call.
    with pytest.raises(UnavailableError):
        await broken(RedisConnectionError())
    with pytest.raises(KeyError):
        await broken(KeyError("a bug, not an outage"))


@pytest.mark.parametrize(
    "kwargs",
    [{"connect_timeout": 0}, {"socket_timeout": -1}, {"max_connections": 0}, {"db": -1}],
)
def test_create_redis_refuses_unbounded_or_invalid_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        create_redis("redis://127.0.0.1:6379/0", **kwargs)  # type: ignore[arg-type]
