"""Browser sessions in Redis."""

from __future__ import annotations

import json
from datetime import datetime

import redis.asyncio as aioredis

from adapters.redis.client import LuaScript, translate_errors
from core.identity.model import BrowserSession
from core.identity.ports import SessionStore

# Key layout under the prefix P (only ever the token's SHA-256 fingerprint, never a token):
#   P s:<token_hash>  hash: the session's fields                  TTL = session ttl
#   P id:<id>         string: token_hash (public id -> session)   TTL = session ttl
#   P u:<user_id>     sorted set: token_hash scored by created_at  TTL >= every member's
#   P seq             counter for public ids                       no TTL
# Every change that touches more than one key is a Lua script, which Redis runs
# atomically, so a logout-all can't interleave with a create and miss its session.
# Scripts derive keys from the prefix, so they need a standalone Redis (or one shard).

_EXTEND_INDEX = """
local function extend(key, ttl)
  if redis.call('TTL', key) < ttl then redis.call('EXPIRE', key, ttl) end
end
"""

# KEYS: session, user index, id counter. ARGV: prefix, ttl, score, token_hash, fields...
_CREATE = (
    _EXTEND_INDEX
    + """
local skey, ukey, seq = KEYS[1], KEYS[2], KEYS[3]
local prefix, ttl, score, member = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local old = redis.call('HMGET', skey, 'id', 'user_id')
if old[1] then
  redis.call('DEL', prefix .. 'id:' .. old[1])
  redis.call('ZREM', prefix .. 'u:' .. old[2], member)
  redis.call('DEL', skey)
end
local id = redis.call('INCR', seq)
-- A lost counter must not hand out the id of a session that is still alive.
while redis.call('EXISTS', prefix .. 'id:' .. id) == 1 do id = redis.call('INCR', seq) end
redis.call('HSET', skey, 'id', id, unpack(ARGV, 5))
redis.call('EXPIRE', skey, ttl)
redis.call('SET', prefix .. 'id:' .. id, member, 'EX', ttl)
redis.call('ZADD', ukey, score, member)
extend(ukey, ttl)
return id
"""
)

# KEYS: session. ARGV: prefix, last_seen_at, ttl.
_TOUCH = (
    _EXTEND_INDEX
    + """
local meta = redis.call('HMGET', KEYS[1], 'id', 'user_id')
if not meta[1] then return 0 end
local ttl = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'last_seen_at', ARGV[2])
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', ARGV[1] .. 'id:' .. meta[1], ttl)
extend(ARGV[1] .. 'u:' .. meta[2], ttl)
return 1
"""
)

# KEYS: session. ARGV: prefix, token_hash.
_DELETE = """
local meta = redis.call('HMGET', KEYS[1], 'id', 'user_id')
if not meta[1] then return 0 end
redis.call('DEL', KEYS[1], ARGV[1] .. 'id:' .. meta[1])
redis.call('ZREM', ARGV[1] .. 'u:' .. meta[2], ARGV[2])
return 1
"""

# KEYS: id key. ARGV: prefix, user_id.
_DELETE_FOR_USER = """
local member = redis.call('GET', KEYS[1])
if not member then return 0 end
local skey = ARGV[1] .. 's:' .. member
local owner = redis.call('HGET', skey, 'user_id')
if not owner then
  redis.call('DEL', KEYS[1])
  return 0
end
if owner ~= ARGV[2] then return 0 end
redis.call('DEL', skey, KEYS[1])
redis.call('ZREM', ARGV[1] .. 'u:' .. owner, member)
return 1
"""

# KEYS: user index. ARGV: prefix, token_hash to keep ('' for none).
_DELETE_ALL = """
local removed = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if member ~= ARGV[2] then
    local skey = ARGV[1] .. 's:' .. member
    local id = redis.call('HGET', skey, 'id')
    if id then
      redis.call('DEL', skey, ARGV[1] .. 'id:' .. id)
      removed = removed + 1
    end
    redis.call('ZREM', KEYS[1], member)
  end
end
return removed
"""

# KEYS: user index. ARGV: prefix. Returns token_hash, fields, token_hash, fields, ...
_LIST = """
local out = {}
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local fields = redis.call('HGETALL', ARGV[1] .. 's:' .. member)
  if #fields == 0 then
    redis.call('ZREM', KEYS[1], member)
  else
    out[#out + 1] = member
    out[#out + 1] = fields
  end
end
return out
"""


class RedisSessionStore(SessionStore):
    """A `SessionStore` in Redis, shared by every HTTP process.

    Contract (from `SessionStore`):
    - Keys and values hold the token's fingerprint (`token_hash`), never a raw token.
    - `create` takes a public id from an INCR counter and writes the session, its
      `id -> token_hash` key and its entry in the user's index in one atomic script;
      the session and id keys expire after `ttl_seconds(now)` (Redis' own clock), the
      index lives at least as long as its longest-lived member.
    - `touch` updates `last_seen_at` and re-applies the TTL (at least 1 s) to the session
      and id keys (and extends the index); unknown hashes are left alone, nothing is
      recreated.
    - `delete_for_user` removes a session only for its owner; `delete_all_for_user`
      removes all live sessions of the user but `keep_token_hash`, atomically with
      respect to concurrent creates, and returns how many it removed.
    - `list_for_user` returns live sessions oldest first and prunes index members whose
      session has expired.
    - `ping` sends PING.
    Every failure of Redis or the network raises `UnavailableError(dependency="redis")`
    within the client's timeouts (see `create_redis`).
    """

    def __init__(self, client: aioredis.Redis, *, key_prefix: str = "portico:sessions:") -> None:
        self._redis = client
        self._prefix = key_prefix
        self._create = LuaScript(client, _CREATE)
        self._touch = LuaScript(client, _TOUCH)
        self._delete = LuaScript(client, _DELETE)
        self._delete_for_user = LuaScript(client, _DELETE_FOR_USER)
        self._delete_all = LuaScript(client, _DELETE_ALL)
        self._list = LuaScript(client, _LIST)

    async def create(self, session: BrowserSession, now: datetime) -> BrowserSession:
        fields = _encode(session)
        args: list[str | int | float] = [
            self._prefix,
            session.ttl_seconds(now),
            session.created_at.timestamp(),
            session.token_hash,
        ]
        for name, value in fields.items():
            args += [name, value]
        keys = [self._session_key(session.token_hash), self._user_key(session.user_id)]
        async with translate_errors():
            new_id = await self._create(keys=[*keys, self._prefix + "seq"], args=args)
        return decode_session(session.token_hash, {**fields, "id": str(new_id)})

    async def get(self, token_hash: str) -> BrowserSession | None:
        async with translate_errors():
            raw = await self._redis.hgetall(self._session_key(token_hash))
        if not raw:
            return None
        return decode_session(token_hash, {_text(k): _text(v) for k, v in raw.items()})

    async def touch(self, token_hash: str, last_seen_at: datetime, ttl_seconds: int) -> None:
        args: list[str | int] = [self._prefix, last_seen_at.isoformat(), max(1, ttl_seconds)]
        async with translate_errors():
            await self._touch(keys=[self._session_key(token_hash)], args=args)

    async def delete(self, token_hash: str) -> bool:
        async with translate_errors():
            removed = await self._delete(
                keys=[self._session_key(token_hash)], args=[self._prefix, token_hash]
            )
        return bool(removed)

    async def delete_for_user(self, user_id: int, session_id: int) -> bool:
        async with translate_errors():
            removed = await self._delete_for_user(
                keys=[f"{self._prefix}id:{session_id}"], args=[self._prefix, str(user_id)]
            )
        return bool(removed)

    async def delete_all_for_user(self, user_id: int, *, keep_token_hash: str | None = None) -> int:
        async with translate_errors():
            removed = await self._delete_all(
                keys=[self._user_key(user_id)], args=[self._prefix, keep_token_hash or ""]
            )
        return int(removed)

    async def list_for_user(self, user_id: int) -> list[BrowserSession]:
        async with translate_errors():
            flat = await self._list(keys=[self._user_key(user_id)], args=[self._prefix])
        sessions = []
        for member, fields in zip(flat[::2], flat[1::2], strict=True):
            sessions.append(decode_session(_text(member), session_fields(fields)))
        sessions.sort(key=lambda s: (s.created_at, s.id or 0))
        return sessions

    async def ping(self) -> None:
        async with translate_errors():
            await self._redis.ping()

    def _session_key(self, token_hash: str) -> str:
        return session_key(self._prefix, token_hash)

    def _user_key(self, user_id: int) -> str:
        return f"{self._prefix}u:{user_id}"


def session_key(prefix: str, token_hash: str) -> str:
    return f"{prefix}s:{token_hash}"


def session_fields(flat: list[bytes | str]) -> dict[str, str]:
    """HGETALL's reply as a Lua script returns it (name, value, name, value...)."""
    return {_text(k): _text(v) for k, v in zip(flat[::2], flat[1::2], strict=True)}


def _encode(session: BrowserSession) -> dict[str, str]:
    fields = {
        "user_id": str(session.user_id),
        "csrf_token": session.csrf_token,
        "created_at": session.created_at.isoformat(),
        "last_seen_at": session.last_seen_at.isoformat(),
        "expires_at": session.expires_at.isoformat(),
        "idle_timeout_seconds": str(session.idle_timeout_seconds),
        "extra": json.dumps(session.extra, separators=(",", ":")),
    }
    # Absent rather than empty, so None and "" stay distinguishable.
    if session.ip is not None:
        fields["ip"] = session.ip
    if session.user_agent is not None:
        fields["user_agent"] = session.user_agent
    return fields


def _text(value: bytes | str) -> str:
    # Works whichever `decode_responses` the injected client was built with.
    return value.decode("utf-8") if isinstance(value, bytes) else value


def decode_session(token_hash: str, fields: dict[str, str]) -> BrowserSession:
    return BrowserSession(
        token_hash=token_hash,
        user_id=int(fields["user_id"]),
        csrf_token=fields["csrf_token"],
        created_at=datetime.fromisoformat(fields["created_at"]),
        last_seen_at=datetime.fromisoformat(fields["last_seen_at"]),
        expires_at=datetime.fromisoformat(fields["expires_at"]),
        idle_timeout_seconds=int(fields["idle_timeout_seconds"]),
        ip=fields.get("ip"),
        user_agent=fields.get("user_agent"),
        id=int(fields["id"]),
        extra=json.loads(fields["extra"]),
    )
