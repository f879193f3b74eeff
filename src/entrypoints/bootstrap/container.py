"""The dependency-injector container: lifecycles and the choice of adapter per port.

One container per process (and per test). Everything with a lifecycle is a `Resource`;
each port is a `Selector` on a setting. Resources start lazily, when the selected branch
first needs them (PITFALLS: `init_resources()` would also start unselected ones), and
`shutdown_resources()` stops only what was started.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from dependency_injector import containers, providers
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.memory.identity import InMemoryUnitOfWorkFactory
from adapters.memory.sessions import InMemorySessionStore
from adapters.redis.client import create_redis
from adapters.redis.sessions import RedisSessionStore
from adapters.security.argon2 import Argon2PasswordHasher
from adapters.sqlalchemy.engine import create_engine
from adapters.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWorkFactory
from adapters.system.clock import SystemClock
from adapters.system.tokens import SecretsTokenGenerator
from core.identity.passwords import PasswordPolicy
from core.identity.policy import SessionPolicy
from entrypoints.bootstrap.settings import Settings


async def _engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    db = settings.database
    engine = create_engine(
        db.url,
        pool_size=db.pool_size,
        max_overflow=db.max_overflow,
        pool_timeout=db.pool_timeout_seconds,
        connect_timeout=db.connect_timeout_seconds,
        statement_timeout_ms=db.statement_timeout_ms,
        echo=settings.debug,
    )
    try:
        yield engine
    finally:
        await engine.dispose()


async def _redis(settings: Settings, db: int) -> AsyncIterator[Redis]:
    if not settings.redis.url:
        raise ValueError("PORTICO_REDIS__URL must be set when a Redis backend is selected")
    client = create_redis(
        settings.redis.url,
        db=db,
        connect_timeout=settings.redis.connect_timeout_seconds,
        socket_timeout=settings.redis.socket_timeout_seconds,
        max_connections=settings.redis.max_connections,
    )
    try:
        yield client
    finally:
        await client.aclose()


def _session_policy(settings: Settings) -> SessionPolicy:
    s = settings.sessions
    return SessionPolicy(
        idle_timeout_seconds=s.idle_timeout_seconds,
        absolute_lifetime_seconds=s.absolute_lifetime_seconds,
        touch_interval_seconds=s.touch_interval_seconds,
    )


def _password_hasher(settings: Settings) -> Argon2PasswordHasher:
    p = settings.passwords
    return Argon2PasswordHasher(
        time_cost=p.argon2_time_cost,
        memory_cost_kib=p.argon2_memory_kib,
        parallelism=p.argon2_parallelism,
        max_concurrency=p.max_concurrent_hashes,
        allow_weak=p.allow_weak_hashing,
    )


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)

    clock = providers.Singleton(SystemClock)
    tokens = providers.Singleton(SecretsTokenGenerator)

    engine = providers.Resource(_engine, settings)
    sessions_redis = providers.Resource(
        _redis, settings, providers.Callable(lambda s: s.redis.sessions_db, settings)
    )

    identity_uow = providers.Selector(
        providers.Callable(lambda s: s.database.backend, settings),
        sql=providers.Singleton(SqlAlchemyUnitOfWorkFactory, engine),
        memory=providers.Singleton(InMemoryUnitOfWorkFactory),
    )
    session_store = providers.Selector(
        providers.Callable(lambda s: s.sessions.backend, settings),
        redis=providers.Singleton(
            RedisSessionStore,
            sessions_redis,
            key_prefix=providers.Callable(lambda s: s.sessions.key_prefix, settings),
        ),
        memory=providers.Singleton(InMemorySessionStore, clock),
    )
    password_hasher = providers.Singleton(_password_hasher, settings)

    session_policy = providers.Singleton(_session_policy, settings)
    password_policy = providers.Singleton(
        PasswordPolicy, min_length=providers.Callable(lambda s: s.passwords.min_length, settings)
    )


def build_container(settings: Settings) -> Container:
    return Container(settings=settings)
