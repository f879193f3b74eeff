"""The dependency-injector container: lifecycles and the choice of adapter per port.

One container per process (and per test). Everything with a lifecycle is a `Resource`;
each port is a `Selector` on a setting. Resources start lazily, when the selected branch
first needs them (PITFALLS: `init_resources()` would also start unselected ones), and
`shutdown_resources()` stops only what was started.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from dependency_injector import containers, providers
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.celery.dispatcher import CeleryJobDispatcher
from adapters.memcached.cache import MemcachedCache
from adapters.memcached.client import MemcachedClient, create_memcached
from adapters.memcached.rate_limit import MemcachedRateLimiter
from adapters.memory.cache import InMemoryCache
from adapters.memory.email import InMemoryEmailSender
from adapters.memory.identity import InMemoryUnitOfWorkFactory
from adapters.memory.jobs import InMemoryJobStore, InMemoryOutbox, InProcessJobDispatcher
from adapters.memory.rate_limit import InMemoryRateLimiter
from adapters.memory.sessions import InMemorySessionStore
from adapters.redis.cache import RedisCache
from adapters.redis.client import create_redis
from adapters.redis.rate_limit import RedisRateLimiter
from adapters.redis.sessions import RedisSessionStore
from adapters.security.argon2 import Argon2PasswordHasher
from adapters.security.jwt import PyJwtAccessTokenCodec
from adapters.smtp.sender import SmtpEmailSender
from adapters.sqlalchemy.engine import create_engine
from adapters.sqlalchemy.jobs import SqlAlchemyOutbox
from adapters.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWorkFactory
from adapters.system.clock import SystemClock
from adapters.system.console_email import ConsoleEmailSender
from adapters.system.tokens import SecretsTokenGenerator
from adapters.threads import ThreadOffload
from core.identity.passwords import PasswordPolicy
from core.identity.policy import AccountLinkPolicy, SessionPolicy
from core.identity.throttle import LoginThrottle, LoginThrottlePolicy
from core.identity.tokens import TokenPolicy
from core.identity.user_cache import CachedUsers
from core.platform.job_policy import JobPolicy
from entrypoints.bootstrap.celery import celery_options
from entrypoints.bootstrap.oauth import (
    http_oauth_providers,
    memory_oauth_providers,
    oauth_http_client,
)
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


def _access_token_codec(settings: Settings) -> PyJwtAccessTokenCodec:
    t = settings.tokens
    return PyJwtAccessTokenCodec(
        settings.secret(),
        issuer=t.issuer,
        audience=t.audience,
        algorithm=t.algorithm,
        leeway_seconds=t.leeway_seconds,
    )


def _token_policy(settings: Settings) -> TokenPolicy:
    t = settings.tokens
    return TokenPolicy(
        access_ttl_seconds=t.access_ttl_seconds, refresh_ttl_seconds=t.refresh_ttl_seconds
    )


def _login_throttle_policy(settings: Settings) -> LoginThrottlePolicy:
    r = settings.rate_limit
    return LoginThrottlePolicy(
        per_account=r.login_per_account,
        per_address=r.login_per_address,
        window_seconds=r.login_window_seconds,
    )


# A memory cache lives in one process and never hears of changes made in another (a
# second server process, a worker, the CLI): users are kept at most this long there, so
# logout-all and password changes reach every process within a second (RELIABILITY.md).
PER_PROCESS_USER_TTL_SECONDS = 1


def _user_cache_ttl(settings: Settings) -> int:
    ttl = settings.cache.user_ttl_seconds
    return min(ttl, PER_PROCESS_USER_TTL_SECONDS) if settings.cache.backend == "memory" else ttl


def _account_links(settings: Settings) -> AccountLinkPolicy:
    a = settings.accounts
    return AccountLinkPolicy(
        frontend_url=a.frontend_url,
        verify_path=a.verify_path,
        reset_path=a.reset_path,
        verification_lifetime_seconds=a.verification_token_lifetime_seconds,
        reset_lifetime_seconds=a.reset_token_lifetime_seconds,
        request_window_seconds=a.mail_request_window_seconds,
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


def _smtp_sender(settings: Settings) -> SmtpEmailSender:
    s = settings.smtp
    return SmtpEmailSender(
        s.host,
        s.port,
        username=s.username,
        password=s.password.get_secret_value() if s.password else None,
        starttls=s.starttls,
        use_tls=s.use_tls,
        timeout=s.timeout_seconds,
        sender_address=settings.email.from_address,
    )


def _job_policy(settings: Settings) -> JobPolicy:
    j = settings.jobs
    return JobPolicy(
        max_attempts=j.max_attempts,
        backoff_base_seconds=j.backoff_base_seconds,
        backoff_max_seconds=max(j.backoff_max_seconds, j.backoff_base_seconds),
        backoff_jitter=j.backoff_jitter,
        timeout_seconds=j.timeout_seconds,
        lease_seconds=j.lease_seconds,
        batch_size=j.batch_size,
    )


async def _memcached(settings: Settings) -> AsyncIterator[MemcachedClient]:
    m = settings.memcached
    client = create_memcached(
        m.servers,
        connect_timeout=m.connect_timeout_seconds,
        timeout=m.timeout_seconds,
        max_pool_size=m.max_pool_size,
    )
    try:
        yield client
    finally:
        client.close()


async def _celery_dispatcher(settings: Settings) -> AsyncIterator[CeleryJobDispatcher]:
    dispatcher = CeleryJobDispatcher(celery_options(settings))
    try:
        yield dispatcher
    finally:
        await dispatcher.aclose()


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)

    clock = providers.Singleton(SystemClock)
    tokens = providers.Singleton(SecretsTokenGenerator)

    engine = providers.Resource(_engine, settings)
    sessions_redis = providers.Resource(
        _redis, settings, providers.Callable(lambda s: s.redis.sessions_db, settings)
    )

    cache_redis = providers.Resource(
        _redis, settings, providers.Callable(lambda s: s.redis.cache_db, settings)
    )
    rate_limit_redis = providers.Resource(
        _redis, settings, providers.Callable(lambda s: s.redis.rate_limit_db, settings)
    )
    memcached = providers.Resource(_memcached, settings)
    # One bound for every Memcached call of the process: no more calls than connections.
    memcached_offload = providers.Singleton(
        ThreadOffload, providers.Callable(lambda s: s.memcached.max_pool_size, settings)
    )
    cache = providers.Selector(
        providers.Callable(lambda s: s.cache.backend, settings),
        memory=providers.Singleton(
            InMemoryCache,
            clock,
            max_entries=providers.Callable(lambda s: s.cache.max_entries, settings),
        ),
        redis=providers.Singleton(
            RedisCache,
            cache_redis,
            key_prefix=providers.Callable(lambda s: s.cache.key_prefix, settings),
        ),
        memcached=providers.Singleton(
            MemcachedCache,
            memcached,
            key_prefix=providers.Callable(lambda s: s.cache.key_prefix, settings),
            offload=memcached_offload,
        ),
    )
    rate_limiter = providers.Selector(
        providers.Callable(lambda s: s.rate_limit.backend, settings),
        memory=providers.Singleton(InMemoryRateLimiter, clock),
        redis=providers.Singleton(
            RedisRateLimiter,
            rate_limit_redis,
            key_prefix=providers.Callable(lambda s: s.rate_limit.key_prefix, settings),
        ),
        memcached=providers.Singleton(
            MemcachedRateLimiter,
            memcached,
            key_prefix=providers.Callable(lambda s: s.rate_limit.key_prefix, settings),
            offload=memcached_offload,
            clock=clock,
        ),
    )
    # Sign-in throttles: the configured limiter, and an in-process one while it is down.
    login_throttle = providers.Singleton(
        LoginThrottle,
        rate_limiter,
        providers.Singleton(InMemoryRateLimiter, clock),
        providers.Singleton(_login_throttle_policy, settings),
    )

    # Set by every commit that enqueued jobs: wakes this process's relay at once.
    job_wakeup = providers.Singleton(asyncio.Event)
    # The in-memory outbox, shared by the memory units of work and the memory outbox.
    memory_jobs = providers.Singleton(InMemoryJobStore, clock, on_commit=job_wakeup.provided.set)

    identity_uow = providers.Selector(
        providers.Callable(lambda s: s.database.backend, settings),
        sql=providers.Singleton(
            SqlAlchemyUnitOfWorkFactory,
            engine,
            clock=clock,
            on_jobs_committed=job_wakeup.provided.set,
        ),
        memory=providers.Singleton(InMemoryUnitOfWorkFactory, jobs=memory_jobs),
    )
    # One unit of work reaches every context's tables, so notifications share it.
    notifications_uow = identity_uow
    # The per-request user read, cache-aside (bootstrap/services.py wires invalidation).
    user_cache = providers.Singleton(
        CachedUsers,
        identity_uow,
        cache,
        ttl_seconds=providers.Callable(_user_cache_ttl, settings),
    )
    # SMTP connects per message, so no sender has a lifecycle to manage.
    email_sender = providers.Selector(
        providers.Callable(lambda s: s.email.backend, settings),
        console=providers.Singleton(
            ConsoleEmailSender,
            sender_address=providers.Callable(lambda s: s.email.from_address, settings),
        ),
        memory=providers.Singleton(InMemoryEmailSender),
        smtp=providers.Singleton(_smtp_sender, settings),
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
    account_links = providers.Singleton(_account_links, settings)
    # Bearer tokens: pure computation, so the real codec serves every profile.
    access_token_codec = providers.Singleton(_access_token_codec, settings)
    token_policy = providers.Singleton(_token_policy, settings)
    # OAuth sign-in: the real providers over one httpx client, or the in-process fake.
    oauth_http = providers.Resource(oauth_http_client, settings)
    oauth_providers = providers.Selector(
        providers.Callable(lambda s: s.oauth.backend, settings),
        http=providers.Singleton(http_oauth_providers, settings, oauth_http),
        memory=providers.Singleton(memory_oauth_providers, settings, tokens),
    )

    # Background jobs: the outbox follows the database backend, the dispatcher the runner.
    job_policy = providers.Singleton(_job_policy, settings)
    outbox = providers.Selector(
        providers.Callable(lambda s: s.database.backend, settings),
        sql=providers.Singleton(SqlAlchemyOutbox, engine),
        memory=providers.Singleton(InMemoryOutbox, memory_jobs),
    )
    # The inline runner's local queue: the relay dispatches into it, runner tasks take
    # from it (so bootstrap reaches it directly, not only as a `JobDispatcher`).
    inline_jobs = providers.Singleton(
        InProcessJobDispatcher, providers.Callable(lambda s: s.jobs.concurrency, settings)
    )
    job_dispatcher = providers.Selector(
        providers.Callable(lambda s: s.jobs.runner, settings),
        inline=inline_jobs,
        celery=providers.Resource(_celery_dispatcher, settings),
    )


def build_container(settings: Settings) -> Container:
    return Container(settings=settings)
