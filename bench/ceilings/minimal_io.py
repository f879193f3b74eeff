"""The bare ceiling of an authenticated read: one Redis GET and one asyncpg SELECT.

`GET /api/v1/users/me` with the session cookie: the cookie's SHA-256 fingerprint names a
session key in Redis (seeded by the harness with `session_value`, under the bench's own
key prefix), one GET reads it, its expiry is checked, and one SELECT by primary key reads
the user row Portico created in the same database; the answer is the same user JSON as
Portico's `GET /api/v1/users/me` (the harness compares the two bodies before measuring).
No middleware, no cache, no rate limit: the least I/O any server-side session needs.

The pools match Portico's defaults: a blocking Redis pool of 50 connections (redis-py,
the same parser Portico gets) and an asyncpg pool of 20 (Portico's 10 + 10 overflow).

Run by the harness: `python -m bench.ceilings.minimal_io --port P --uvicorn-flags JSON ...`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench.ceilings.serving import serve

REDIS_MAX_CONNECTIONS = 50
DATABASE_POOL_SIZE = 20
TIMEOUT_SECONDS = 2.0

SELECT_USER = (
    "SELECT id, email, username, tier_code, email_verified, created_at "
    "FROM users WHERE id = $1 AND deleted_at IS NULL"
)


def session_key(prefix: str, token: str) -> str:
    return prefix + hashlib.sha256(token.encode("utf-8")).hexdigest()


def session_value(user_id: int, expires_at: float) -> str:
    return json.dumps({"user_id": user_id, "expires_at": expires_at})


def iso_utc(moment: datetime) -> str:
    """ISO 8601 with `Z` for UTC, as pydantic writes Portico's `created_at`."""
    text = moment.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


def user_json(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "email": row["email"],
        "username": row["username"],
        "tier": row["tier_code"],
        "email_verified": row["email_verified"],
        "created_at": iso_utc(row["created_at"]) if row["created_at"] is not None else None,
    }


def create_app(redis_url: str, database_dsn: str, session_prefix: str, cookie: str) -> Starlette:
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool = aioredis.BlockingConnectionPool.from_url(
            redis_url,
            max_connections=REDIS_MAX_CONNECTIONS,
            timeout=TIMEOUT_SECONDS,
            socket_timeout=TIMEOUT_SECONDS,
            socket_connect_timeout=TIMEOUT_SECONDS,
        )
        state["redis"] = aioredis.Redis.from_pool(pool)
        state["db"] = await asyncpg.create_pool(
            database_dsn, min_size=1, max_size=DATABASE_POOL_SIZE
        )
        try:
            yield
        finally:
            await state["db"].close()
            await state["redis"].aclose()

    async def me(request: Request) -> Response:
        token = request.cookies.get(cookie)
        if not token:
            return JSONResponse({"detail": "not signed in"}, status_code=401)
        raw = await state["redis"].get(session_key(session_prefix, token))
        if raw is None:
            return JSONResponse({"detail": "not signed in"}, status_code=401)
        session = json.loads(raw)
        if session["expires_at"] <= time.time():
            return JSONResponse({"detail": "session expired"}, status_code=401)
        row = await state["db"].fetchrow(SELECT_USER, session["user_id"])
        if row is None:
            return JSONResponse({"detail": "not signed in"}, status_code=401)
        return JSONResponse(user_json(row))

    async def started(request: Request) -> Response:
        # Readiness for the harness, without I/O (the lifespan has run once this answers).
        return Response(b"ok", media_type="text/plain")

    return Starlette(
        routes=[
            Route("/api/v1/users/me", me, methods=["GET"]),
            Route("/health", started, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--uvicorn-flags", required=True, help="JSON object of uvicorn flags")
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--database-dsn", required=True, help="postgresql://... (asyncpg)")
    parser.add_argument("--session-prefix", required=True)
    parser.add_argument("--cookie", required=True, help="name of the session cookie")
    args = parser.parse_args()
    app = create_app(args.redis_url, args.database_dsn, args.session_prefix, args.cookie)
    serve(app, args.port, args.uvicorn_flags)


if __name__ == "__main__":
    main()
