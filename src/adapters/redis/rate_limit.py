"""A sliding-window-log rate limiter in Redis."""

from __future__ import annotations

import secrets

import redis.asyncio as aioredis

from adapters.redis.client import translate_errors
from core.platform.rate_limit import DEPENDENCY, RateLimitDecision, RateLimiter, check_hit

_MICROS = 1_000_000

# Key layout under the prefix P: `P <window_seconds>:<key>`, a sorted set holding one
# member per allowed unit, scored by the microsecond it was counted at (Redis' clock).
#
# KEYS[1]: the log. ARGV: limit, window (µs), cost, a unique id for this hit.
# Returns {allowed (0/1), units in the window, reset after (µs), retry after (µs)}.
# The whole decision is one script, which Redis runs atomically: no other hit on the
# key can interleave between counting and recording.
_HIT = """
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
-- A unit counted at t is inside the window while now - window < t.
redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%.0f', now - window))
local used = redis.call('ZCARD', key)
local allowed = 0
local retry = 0
if used + cost <= limit then
  allowed = 1
  local score = string.format('%.0f', now)
  -- In batches: unpack() of thousands of values overflows Lua's C stack.
  for first = 1, cost, 500 do
    local members = {}
    for i = first, math.min(cost, first + 499) do
      members[#members + 1] = score
      members[#members + 1] = ARGV[4] .. ':' .. i
    end
    redis.call('ZADD', key, unpack(members))
  end
  used = used + cost
  redis.call('PEXPIRE', key, math.ceil(window / 1000))
else
  -- Room for `cost` appears when the (used + cost - limit)-th oldest unit leaves.
  local rank = used + cost - limit - 1
  local oldest = redis.call('ZRANGE', key, rank, rank, 'WITHSCORES')
  retry = tonumber(oldest[2]) + window - now
end
local reset = 0
if used > 0 then
  local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  reset = tonumber(newest[2]) + window - now
end
return {allowed, used, reset, retry}
"""


class RedisRateLimiter(RateLimiter):
    """A `RateLimiter` in Redis, shared by every process.

    Algorithm: a sliding-window log. Each allowed unit is a member of a sorted set
    scored by the microsecond it was counted at; a hit prunes what has left the window,
    counts what remains and, if `cost` more units fit, records them, all in one Lua
    script. Time is Redis' own (`TIME`), so processes with skewed clocks still agree.
    Precision: exact. No span of `window_seconds` ever holds more than `limit` units,
    and concurrent hits can't overshoot because the script is atomic. Memory per key
    is O(units in the window) <= `limit` members (hence `MAX_LIMIT`), and each hit
    costs O(log n + cost). Keys expire one window after their newest unit.

    Keys: `key_prefix` + `<window_seconds>:` + the caller's key (binary-safe as is).
    Every Redis or network failure raises `UnavailableError(dependency="rate_limit")`
    within the client's timeouts (see `create_redis`).
    """

    def __init__(self, client: aioredis.Redis, *, key_prefix: str = "portico:ratelimit:") -> None:
        self._redis = client
        self._prefix = key_prefix
        self._hit = client.register_script(_HIT)

    async def hit(
        self, key: str, limit: int, window_seconds: int, cost: int = 1
    ) -> RateLimitDecision:
        check_hit(key, limit, window_seconds, cost)
        args: list[int | str] = [limit, window_seconds * _MICROS, cost, secrets.token_hex(8)]
        async with translate_errors(DEPENDENCY):
            allowed, used, reset, retry = await self._hit(
                keys=[f"{self._prefix}{window_seconds}:{key}"], args=args
            )
        return RateLimitDecision(
            allowed=bool(allowed),
            limit=limit,
            remaining=max(0, limit - int(used)),
            reset_after_seconds=int(reset) / _MICROS,
            retry_after_seconds=int(retry) / _MICROS,
        )

    async def ping(self) -> None:
        async with translate_errors(DEPENDENCY):
            await self._redis.ping()
