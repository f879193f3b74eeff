"""A caller's session, cached user and general limit in one Redis round trip.

When sessions, cache and rate limits share one Redis (one keyspace, apart by prefix),
one script reads the session hash, the user's cache entry and generation, and counts
the general limit for the entry's tier: what `RedisSessionStore.get`, `RedisCache`
(through `UserCache`) and `RedisRateLimiter.hit` would each answer, with their keys and
their algorithms (the GCRA step is the limiter's own Lua).

The script derives the user's keys from the session it reads, so like the session
store's scripts it needs a standalone Redis (or one shard).
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from adapters.redis.cache import entry_key, untagged_value
from adapters.redis.client import LuaScript, translate_errors
from adapters.redis.rate_limit import GCRA_LUA, decision, gcra_key
from adapters.redis.sessions import decode_session, session_fields, session_key
from core.identity.callers import CallerRead, CallerReader, TieredLimit
from core.identity.user_cache import GENERATION_SUFFIX, USER_KEY_PREFIX
from core.platform.cache import JsonValue
from core.shared.errors import UnavailableError

_MICROS = 1_000_000

# ARGV: mode ('s': ARGV[2] is the session key; 'u': ARGV[2] is the user id),
#   the user entry key without the id, the generation key's suffix,
#   the limit key without the id ('' for no limit), the window (µs), the default limit,
#   then tier, limit pairs.
# Returns {session fields (flat), entry or nil, generation or nil[, gcra reply, limit]}.
_READ = (
    GCRA_LUA
    + """
local fields = {}
local uid
if ARGV[1] == 's' then
  fields = redis.call('HGETALL', ARGV[2])
  for i = 1, #fields, 2 do
    if fields[i] == 'user_id' then uid = fields[i + 1] end
  end
  if not uid then return {fields} end
else
  uid = ARGV[2]
end
local entry_key = ARGV[3] .. uid
local got = redis.call('MGET', entry_key, entry_key .. ARGV[4])
if ARGV[5] == '' or not got[1] or not got[2] then return {fields, got[1], got[2]} end
-- The tier of a current entry only (its generation is the user's), as UserCache judges.
local ok, entry = pcall(cjson.decode, got[1])
local ok_generation, generation = pcall(cjson.decode, got[2])
if not (ok and ok_generation) or type(entry) ~= 'table' or type(generation) ~= 'string'
    or entry.generation ~= generation or type(entry.user) ~= 'table'
    or type(entry.user.tier_code) ~= 'string' then
  return {fields, got[1], got[2]}
end
local limit = tonumber(ARGV[7])
for i = 8, #ARGV, 2 do
  if ARGV[i] == entry.user.tier_code then limit = tonumber(ARGV[i + 1]) end
end
return {fields, got[1], got[2], gcra(ARGV[5] .. uid, limit, tonumber(ARGV[6]), 1), limit}
"""
)


class RedisCallerReader(CallerReader):
    """`CallerReader` in one script (see the module doc); keys under the same prefixes
    as `RedisSessionStore`, `RedisCache` and `RedisRateLimiter` on the same client.

    `read_session` raises `UnavailableError(dependency="sessions")` when Redis fails
    (nobody can be identified); `read_user` then answers a read with the cache and the
    limiter marked unavailable instead (the user comes from the database).
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        sessions_prefix: str = "portico:sessions:",
        cache_prefix: str = "portico:cache:",
        rate_limit_prefix: str = "portico:ratelimit:",
    ) -> None:
        self._sessions_prefix = sessions_prefix
        self._entry_prefix = entry_key(cache_prefix, USER_KEY_PREFIX)
        self._rate_limit_prefix = rate_limit_prefix
        self._read = LuaScript(client, _READ)

    async def read_session(self, token_hash: str, limit: TieredLimit | None) -> CallerRead:
        args = ["s", session_key(self._sessions_prefix, token_hash), *self._limit_args(limit)]
        async with translate_errors("sessions"):
            reply = await self._read(keys=[], args=args)
        if not reply[0]:
            return CallerRead()
        session = decode_session(token_hash, session_fields(reply[0]))
        return self._caller(reply, session.user_id, session=session)

    async def read_user(self, user_id: int, limit: TieredLimit | None) -> CallerRead:
        args = ["u", str(user_id), *self._limit_args(limit)]
        try:
            async with translate_errors("cache"):
                reply = await self._read(keys=[], args=args)
        except UnavailableError:
            return CallerRead(
                user_id=user_id, cache_unavailable=True, limit_unavailable=limit is not None
            )
        return self._caller(reply, user_id)

    def _limit_args(self, limit: TieredLimit | None) -> list[str | int]:
        args: list[str | int] = [self._entry_prefix, GENERATION_SUFFIX]
        if limit is None:
            return [*args, "", 0, 0]
        # The limiter's key for `limit.key(user_id)`, less the id the script appends.
        prefix = gcra_key(self._rate_limit_prefix, limit.key_prefix, limit.window_seconds)
        args += [prefix, limit.window_seconds * _MICROS, limit.default]
        for tier, tier_limit in limit.by_tier.items():
            args += [tier, tier_limit]
        return args

    @staticmethod
    def _caller(reply: list[Any], user_id: int, **found: Any) -> CallerRead:
        entry: JsonValue = untagged_value(reply[1]) if len(reply) > 1 else None
        generation: JsonValue = untagged_value(reply[2]) if len(reply) > 2 else None
        counted = decision(int(reply[4]), reply[3]) if len(reply) > 4 else None
        return CallerRead(
            user_id=user_id, entry=entry, generation=generation, decision=counted, **found
        )
