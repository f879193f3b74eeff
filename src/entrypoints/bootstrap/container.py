"""The dependency-injector container: lifecycles and the choice of adapter per port.

One container per process (and per test). Everything with a lifecycle is a `Resource`
(`resources.py`); each port is a `Selector` on a setting, naming its adapters by dotted
path (`lazy.py`), so only the selected adapter is ever imported. Resources start lazily,
when the selected branch first needs them (PITFALLS: `init_resources()` would also start
unselected ones), and `shutdown_resources()` stops only what was started.

`PORTS` maps each core port type to the provider that gives it: `start_runtime`, the
service registry and the core test world all loop over it. Adding a port is its provider
here and its line in `PORTS`.
"""

from __future__ import annotations

from collections.abc import Mapping

from dependency_injector import containers, providers

from core.audit.ports import AuditUnitOfWorkFactory
from core.billing.ports import BillingUnitOfWorkFactory
from core.conversations.ports import ChatModel, ConversationsUnitOfWorkFactory
from core.identity.callers import CallerReader
from core.identity.oauth import OAuthProviders
from core.identity.ports import (
    AccessTokenCodec,
    IdentityUnitOfWorkFactory,
    PasswordHasher,
    SessionStore,
)
from core.notifications.ports import EmailSender, NotificationsUnitOfWorkFactory
from core.payments.ports import PaymentGateway, PaymentsUnitOfWorkFactory, WebhookVerifier
from core.platform.cache import Cache
from core.platform.job_runner import JobWakeup
from core.platform.jobs import JobDispatcher, LocalJobQueue, Outbox
from core.platform.rate_limit import LocalRateLimiter, RateLimiter
from core.platform.telemetry import Telemetry
from core.shared.clock import Clock
from core.shared.ids import TokenGenerator
from entrypoints.bootstrap import factories, resources
from entrypoints.bootstrap.lazy import lazy
from entrypoints.bootstrap.settings import Settings


def _caller_reads(settings: Settings) -> str:
    backends = {settings.sessions.backend, settings.cache.backend, settings.rate_limit.backend}
    return "redis" if backends == {"redis"} else "separate"


def _oauth_backend(settings: Settings) -> str:
    enabled = any(provider.enabled for provider in settings.oauth.providers().values())
    return settings.oauth.backend if enabled else "none"


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)

    clock = providers.Singleton(lazy("adapters.system.clock:SystemClock"))
    tokens = providers.Singleton(lazy("adapters.system.tokens:SecretsTokenGenerator"))
    # Prometheus whatever else is selected: every family is registered at startup. One
    # registry per container (per runtime), so several apps in one process never collide.
    metrics_registry = providers.Singleton(lazy("prometheus_client:CollectorRegistry"))
    telemetry = providers.Singleton(
        lazy("adapters.prometheus.telemetry:PrometheusTelemetry"), metrics_registry
    )

    # --- resources -----------------------------------------------------------------
    # The tracer provider (None with tracing off); the engine and Redis are instrumented
    # on it when they open.
    tracing = providers.Resource(resources.tracing, settings)
    engine = providers.Resource(resources.engine, settings, tracing)
    # One client (one pool) for sessions, cache and rate limits: one keyspace, apart by
    # key prefix.
    redis = providers.Resource(resources.redis, settings, tracing)
    memcached = providers.Resource(resources.memcached, settings)
    # One bound for every Memcached call of the process: no more calls than connections.
    memcached_offload = providers.Singleton(
        lazy("adapters.threads:ThreadOffload"), settings.provided.memcached.max_pool_size
    )
    oauth_http = providers.Resource(resources.oauth_http_client, settings)

    # --- storage and jobs ----------------------------------------------------------
    # Set by every commit that enqueued jobs: wakes this process's relay at once.
    job_wakeup = providers.Singleton(JobWakeup)
    # The in-memory outbox, shared by the memory units of work and the memory outbox.
    memory_jobs = providers.Singleton(
        lazy("adapters.memory.jobs:InMemoryJobStore"), clock, on_commit=job_wakeup.provided.set
    )
    unit_of_work = providers.Selector(
        settings.provided.database.backend,
        sql=providers.Singleton(
            lazy("adapters.sqlalchemy.unit_of_work:SqlAlchemyUnitOfWorkFactory"),
            engine,
            clock=clock,
            on_jobs_committed=job_wakeup.provided.set,
        ),
        memory=providers.Singleton(
            lazy("adapters.memory.unit_of_work:InMemoryUnitOfWorkFactory"), jobs=memory_jobs
        ),
    )
    # The outbox follows the database backend, the dispatcher the runner.
    outbox = providers.Selector(
        settings.provided.database.backend,
        sql=providers.Singleton(lazy("adapters.sqlalchemy.jobs:SqlAlchemyOutbox"), engine),
        memory=providers.Singleton(lazy("adapters.memory.jobs:InMemoryOutbox"), memory_jobs),
    )
    # The inline runner's local queue: the relay dispatches into it, runner tasks take
    # from it.
    local_jobs = providers.Singleton(
        lazy("adapters.memory.jobs:InProcessJobDispatcher"), settings.provided.jobs.concurrency
    )
    job_dispatcher = providers.Selector(
        settings.provided.jobs.runner,
        inline=local_jobs,
        celery=providers.Resource(resources.celery_dispatcher, settings),
    )

    # --- cache and rate limits -----------------------------------------------------
    cache = providers.Selector(
        settings.provided.cache.backend,
        memory=providers.Singleton(
            lazy("adapters.memory.cache:InMemoryCache"),
            clock,
            max_entries=settings.provided.cache.max_entries,
        ),
        redis=providers.Singleton(
            lazy("adapters.redis.cache:RedisCache"),
            redis,
            key_prefix=settings.provided.cache.key_prefix,
        ),
        memcached=providers.Singleton(
            lazy("adapters.memcached.cache:MemcachedCache"),
            memcached,
            key_prefix=settings.provided.cache.key_prefix,
            offload=memcached_offload,
        ),
    )
    rate_limiter = providers.Selector(
        settings.provided.rate_limit.backend,
        memory=providers.Singleton(lazy("adapters.memory.rate_limit:InMemoryRateLimiter"), clock),
        redis=providers.Singleton(
            lazy("adapters.redis.rate_limit:RedisRateLimiter"),
            redis,
            key_prefix=settings.provided.rate_limit.key_prefix,
        ),
        memcached=providers.Singleton(
            lazy("adapters.memcached.rate_limit:MemcachedRateLimiter"),
            memcached,
            key_prefix=settings.provided.rate_limit.key_prefix,
            offload=memcached_offload,
            clock=clock,
        ),
    )
    # Decides sign-in throttles while the shared limiter is down (never fails open).
    local_rate_limiter = providers.Singleton(
        lazy("adapters.memory.rate_limit:InMemoryRateLimiter"), clock
    )

    # --- identity and notifications ------------------------------------------------
    session_store = providers.Selector(
        settings.provided.sessions.backend,
        redis=providers.Singleton(
            lazy("adapters.redis.sessions:RedisSessionStore"),
            redis,
            key_prefix=settings.provided.sessions.key_prefix,
        ),
        memory=providers.Singleton(lazy("adapters.memory.sessions:InMemorySessionStore"), clock),
    )
    password_hasher = providers.Singleton(factories.password_hasher, settings)
    # Bearer tokens: pure computation, so the real codec serves every profile.
    access_token_codec = providers.Singleton(factories.access_token_codec, settings)
    # OAuth sign-in: the real providers over one httpx client, or the in-process fake;
    # no client at all while no provider is enabled.
    oauth_providers = providers.Selector(
        providers.Callable(_oauth_backend, settings),
        http=providers.Singleton(factories.http_oauth_providers, settings, oauth_http),
        memory=providers.Singleton(factories.memory_oauth_providers, settings, tokens),
        none=providers.Singleton(OAuthProviders),
    )
    # Session, cached user and general limit in one round trip when all three live on
    # one Redis; otherwise nothing here, and the core reads each store in turn
    # (`services.FALLBACKS`).
    caller_reader = providers.Selector(
        providers.Callable(_caller_reads, settings),
        redis=providers.Singleton(
            lazy("adapters.redis.callers:RedisCallerReader"),
            redis,
            sessions_prefix=settings.provided.sessions.key_prefix,
            cache_prefix=settings.provided.cache.key_prefix,
            rate_limit_prefix=settings.provided.rate_limit.key_prefix,
        ),
        separate=providers.Object(None),
    )
    # SMTP connects per message, so no sender has a lifecycle to manage.
    email_sender = providers.Selector(
        settings.provided.email.backend,
        console=providers.Singleton(
            lazy("adapters.system.console_email:ConsoleEmailSender"),
            sender_address=settings.provided.email.from_address,
        ),
        memory=providers.Singleton(lazy("adapters.memory.email:InMemoryEmailSender")),
        smtp=providers.Singleton(factories.smtp_sender, settings),
    )

    # --- conversations -------------------------------------------------------------
    chat_model = providers.Selector(
        settings.provided.llm.backend,
        fake=providers.Singleton(
            lazy("adapters.openai.fake:ScriptedChatModel"),
            latency_per_token_seconds=settings.provided.llm.fake_latency_per_token_seconds,
        ),
        openai=providers.Resource(resources.openai_chat_model, settings),
    )

    # --- payments ------------------------------------------------------------------
    webhook_secret = providers.Singleton(factories.webhook_secret, settings)
    payment_gateway = providers.Selector(
        settings.provided.payments.backend,
        fake=providers.Singleton(
            lazy("adapters.stripe.fake_gateway:FakePaymentGateway"), clock, webhook_secret
        ),
        stripe=providers.Resource(resources.stripe_gateway, settings),
    )
    # Stripe's signature scheme for both: the fake signs its events the same way.
    webhook_verifier = providers.Singleton(
        lazy("adapters.stripe.webhooks:StripeWebhookVerifier"),
        webhook_secret,
        tolerance_seconds=settings.provided.stripe.webhook_tolerance_seconds,
    )


# Each core port and the container attribute that provides it. One unit of work serves
# every context: each context's factory Protocol is the core's view of it.
PORTS: Mapping[type, str] = {
    Clock: "clock",
    TokenGenerator: "tokens",
    IdentityUnitOfWorkFactory: "unit_of_work",
    NotificationsUnitOfWorkFactory: "unit_of_work",
    BillingUnitOfWorkFactory: "unit_of_work",
    PaymentsUnitOfWorkFactory: "unit_of_work",
    ConversationsUnitOfWorkFactory: "unit_of_work",
    AuditUnitOfWorkFactory: "unit_of_work",
    ChatModel: "chat_model",
    PaymentGateway: "payment_gateway",
    WebhookVerifier: "webhook_verifier",
    Outbox: "outbox",
    JobDispatcher: "job_dispatcher",
    LocalJobQueue: "local_jobs",
    JobWakeup: "job_wakeup",
    Cache: "cache",
    RateLimiter: "rate_limiter",
    LocalRateLimiter: "local_rate_limiter",
    SessionStore: "session_store",
    PasswordHasher: "password_hasher",
    AccessTokenCodec: "access_token_codec",
    OAuthProviders: "oauth_providers",
    EmailSender: "email_sender",
    CallerReader: "caller_reader",
    Telemetry: "telemetry",
}


def port_providers(container: Container) -> dict[type, providers.Provider[object]]:
    return {port: getattr(container, name) for port, name in PORTS.items()}


def build_container(settings: Settings) -> Container:
    return Container(settings=settings)
