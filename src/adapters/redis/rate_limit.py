"""A GCRA rate limiter in Redis (the algorithm: `core.platform.gcra`)."""

from __future__ import annotations

import redis.asyncio as aioredis

from adapters.redis.client import LuaScript, translate_errors
from core.platform.rate_limit import DEPENDENCY, RateLimitDecision, RateLimiter, check_hit

_MICROS = 1_000_000

# Key layout under the prefix P: `P g:<window_seconds>:<key>`, a string holding the
# key's theoretical arrival time in microseconds of Redis' clock; it expires when that
# time passes (an expired key is a full limit).
#
# `GCRA_LUA` defines `gcra(key, limit, window_us, cost)`, the step of
# `core.platform.gcra.gcra_step` on the stored time, returning
# {allowed (0/1), remaining, reset after (µs), retry after (µs)}. Other scripts that
# count a hit among other reads (one round trip per request) include it.
# Integers up to 2^53 are exact in Lua's numbers; `%.0f` keeps them out of exponent
# notation when stored.
GCRA_LUA = """
local function gcra(key, limit, window, cost)
  local interval = math.floor(window / limit)
  local burst = interval * limit
  local time = redis.call('TIME')
  local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
  local start = tonumber(redis.call('GET', key) or '0')
  if start < now then start = now end
  local new_tat = start + cost * interval
  if new_tat - now <= burst then
    local ttl = math.max(1, math.ceil((new_tat - now) / 1000))
    redis.call('SET', key, string.format('%.0f', new_tat), 'PX', ttl)
    return {1, math.floor((burst - (new_tat - now)) / interval), new_tat - now, 0}
  end
  return {0, math.floor((burst - (start - now)) / interval), start - now, new_tat - now - burst}
end
"""

# KEYS[1]: the arrival time. ARGV: limit, window (µs), cost.
_HIT = (
    GCRA_LUA
    + """
return gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
"""
)


def gcra_key(prefix: str, key: str, window_seconds: int) -> str:
    return f"{prefix}g:{window_seconds}:{key}"


def decision(limit: int, reply: list[int]) -> RateLimitDecision:
    """The decision of a `gcra(...)` reply."""
    allowed, remaining, reset, retry = (int(value) for value in reply)
    return RateLimitDecision(
        allowed=bool(allowed),
        limit=limit,
        remaining=remaining,
        reset_after_seconds=reset / _MICROS,
        retry_after_seconds=retry / _MICROS,
    )


class RedisRateLimiter(RateLimiter):
    """A `RateLimiter` in Redis, shared by every process.

    Algorithm: GCRA (`core.platform.gcra`), one Lua script per hit, which Redis runs
    atomically, so concurrent hits can't overshoot. Time is Redis' own (`TIME`), so
    processes with skewed clocks still agree. Memory per key is one short string,
    whatever the limit; keys expire when their limit is whole again.

    Keys: `key_prefix` + `g:<window_seconds>:` + the caller's key (binary-safe as is).
    Every Redis or network failure raises `UnavailableError(dependency="rate_limit")`
    within the client's timeouts (see `create_redis`).
    """

    def __init__(self, client: aioredis.Redis, *, key_prefix: str = "portico:ratelimit:") -> None:
        self._redis = client
        self._prefix = key_prefix
        self._hit = LuaScript(client, _HIT)

    async def hit(
        self, key: str, limit: int, window_seconds: int, cost: int = 1
    ) -> RateLimitDecision:
        check_hit(key, limit, window_seconds, cost)
        args = [limit, window_seconds * _MICROS, cost]
        async with translate_errors(DEPENDENCY):
            reply = await self._hit(keys=[gcra_key(self._prefix, key, window_seconds)], args=args)
        return decision(limit, reply)

    async def ping(self) -> None:
        async with translate_errors(DEPENDENCY):
            await self._redis.ping()
