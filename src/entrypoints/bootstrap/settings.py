"""Settings from the environment (prefix `PORTICO_`, nesting with `__`) and `.env`.

Every field here is documented in the README's settings table.
"""

from __future__ import annotations

import re
import secrets
from typing import Literal

from pydantic import BaseModel, Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from entrypoints.bootstrap.admin_settings import AdminSettings
from entrypoints.bootstrap.http_settings import HttpSettings, MetricsSettings
from entrypoints.bootstrap.oauth_settings import OAuthSettings
from entrypoints.bootstrap.tracing_settings import TracingSettings

DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///./var/portico.db"


class DatabaseSettings(BaseModel):
    url: str = DEFAULT_SQLITE_URL
    # `memory` keeps users in process (unit tests, throwaway demos); `sql` is the default.
    backend: Literal["sql", "memory"] = "sql"
    pool_size: int = Field(10, ge=1)
    max_overflow: int = Field(10, ge=0)
    pool_timeout_seconds: float = Field(5.0, gt=0)
    connect_timeout_seconds: float = Field(5.0, gt=0)
    statement_timeout_ms: int = Field(15_000, ge=100)
    # Create missing tables at startup instead of migrating (tests only; refused in production).
    auto_create: bool = False


class RedisSettings(BaseModel):
    # One keyspace for sessions, cache and rate limits, apart by key prefix (their
    # `key_prefix` settings), so one round trip can read what one request needs and a
    # Redis Cluster (database 0 only) serves it. The URL's path may name a database.
    url: str | None = None
    connect_timeout_seconds: float = Field(2.0, gt=0)
    socket_timeout_seconds: float = Field(2.0, gt=0)
    max_connections: int = Field(50, ge=1)


class SessionSettings(BaseModel):
    backend: Literal["memory", "redis"] = "memory"
    # None means: secure in production, plain in development (so http://localhost works).
    cookie_secure: bool | None = None
    cookie_name: str = "portico_session"
    idle_timeout_seconds: int = Field(30 * 60, ge=60)
    absolute_lifetime_seconds: int = Field(12 * 60 * 60, ge=60)
    touch_interval_seconds: int = Field(60, ge=0)
    # Redis key prefix, so several deployments (or test runs) can share one database.
    key_prefix: str = "portico:sessions:"


class PasswordSettings(BaseModel):
    min_length: int = Field(12, ge=8, le=128)
    argon2_time_cost: int = Field(2, ge=1)
    argon2_memory_kib: int = Field(19_456, ge=8)
    argon2_parallelism: int = Field(1, ge=1)
    max_concurrent_hashes: int = Field(2, ge=1)
    # Lets tests use cheap argon2 parameters; the security check refuses it in production.
    allow_weak_hashing: bool = False


class TokenSettings(BaseModel):
    """Bearer tokens for mobile and API clients (signed with a key derived from
    `secret_key`)."""

    access_ttl_seconds: int = Field(15 * 60, ge=60, le=24 * 3600)
    refresh_ttl_seconds: int = Field(30 * 24 * 3600, ge=3600, le=365 * 24 * 3600)
    issuer: str = Field("portico", min_length=1, max_length=200)
    audience: str = Field("portico-api", min_length=1, max_length=200)
    # Pinned: tokens with any other algorithm (`none` included) are refused.
    algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    # Clock skew tolerated between the process that issues and the one that checks.
    leeway_seconds: int = Field(10, ge=0, le=300)

    @model_validator(mode="after")
    def _refresh_outlives_access(self) -> TokenSettings:
        if self.refresh_ttl_seconds <= self.access_ttl_seconds:
            raise ValueError("tokens.refresh_ttl_seconds must exceed tokens.access_ttl_seconds")
        return self


class AccountSettings(BaseModel):
    # Verification and reset mail link to the front end (frontend_url + path + ?token=),
    # which posts the token to the API.
    frontend_url: str = Field("http://localhost:3000", pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
    verify_path: str = Field("/verify-email", pattern=r"^/[^\s#]*$")
    reset_path: str = Field("/reset-password", pattern=r"^/[^\s#]*$")
    verification_token_lifetime_seconds: int = Field(24 * 3600, ge=300, le=7 * 24 * 3600)
    reset_token_lifetime_seconds: int = Field(30 * 60, ge=300, le=24 * 3600)
    # Requests for the same mail within this window send one mail.
    mail_request_window_seconds: int = Field(60, ge=1, le=3600)


class EmailSettings(BaseModel):
    # `console` prints mail (links with live tokens included) to stderr: development only.
    backend: Literal["console", "memory", "smtp"] = "console"
    from_address: str = "Portico <no-reply@localhost>"


class SmtpSettings(BaseModel):
    host: str = "localhost"
    port: int = Field(25, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    # STARTTLS upgrade of a plain connection (port 587) or implicit TLS (port 465).
    starttls: bool = False
    use_tls: bool = False
    # Per network step (connect, each command); a whole send gets three times this.
    timeout_seconds: float = Field(10.0, gt=0, le=300)

    @model_validator(mode="after")
    def _one_tls_mode(self) -> SmtpSettings:
        if self.starttls and self.use_tls:
            raise ValueError("set either smtp.starttls or smtp.use_tls, not both")
        return self


class JobSettings(BaseModel):
    # `inline`: jobs run in this process (embedded default, tests); `celery`: the relay
    # publishes them to Celery workers (production).
    runner: Literal["inline", "celery"] = "inline"
    max_attempts: int = Field(5, ge=1, le=100)
    backoff_base_seconds: float = Field(2.0, gt=0)
    backoff_max_seconds: float = Field(900.0, gt=0)
    backoff_jitter: float = Field(0.2, ge=0, le=1)
    # How long one run may take before it counts as failed.
    timeout_seconds: float = Field(300.0, gt=0)
    # A claimed or running job whose lease expires is handed out again (its runner died).
    lease_seconds: float = Field(60.0, ge=1)
    batch_size: int = Field(50, ge=1, le=1000)
    # Inline runner: jobs running at once in this process.
    concurrency: int = Field(4, ge=1, le=100)
    # How often a relay looks for due jobs when nothing wakes it (commits wake it at once).
    poll_interval_seconds: float = Field(1.0, gt=0)
    # Celery beat: how often a worker runs the relay (the sweep) besides the HTTP relay.
    sweep_interval_seconds: float = Field(5.0, gt=0)
    # Run a relay loop in this process (celery runner); worker processes never do.
    relay: bool = True
    # Done jobs are deleted this long after they finished (their keys stop deduplicating).
    keep_done_seconds: int = Field(7 * 24 * 3600, ge=60)
    # Extension point: "package.module:function" callables, each given the runtime and
    # returning {job name: handler}, merged into bootstrap's handlers (plugins, tests).
    extra_handlers: list[str] = Field(default_factory=list)


class WorkerSettings(BaseModel):
    # Each Celery worker process serves its own Prometheus metrics on this port plus
    # its process index (prefork child i: port + i); unset: no metrics server.
    metrics_port: int | None = Field(None, ge=1, le=65535)
    metrics_address: str = "127.0.0.1"


class CelerySettings(BaseModel):
    # redis://[:password@]host:6379/N or amqp://user:password@host:5672/vhost
    broker_url: str | None = None
    queue: str = Field("portico.jobs", min_length=1, max_length=200)
    # Redis broker: keep above jobs.timeout_seconds, or running jobs get delivered twice.
    visibility_timeout_seconds: int = Field(3600, ge=60)
    connect_timeout_seconds: float = Field(5.0, gt=0)
    publish_timeout_seconds: float = Field(5.0, gt=0)
    # Redis broker: prefix of every key, so deployments or test runs can share a database.
    redis_key_prefix: str = ""
    # `celery inspect`/`control` support (a pidbox exchange and queue per worker).
    remote_control: bool = True


class CacheSettings(BaseModel):
    backend: Literal["memory", "redis", "memcached"] = "memory"
    key_prefix: str = "portico:cache:"
    # In-memory cache size per process (least recently used entries go first).
    max_entries: int = Field(10_000, ge=1)
    # How long the user behind a session or access token is cached (a change forgets it
    # at once; the TTL bounds staleness when that fails). The memory backend, one cache
    # per process, keeps users at most 1 s: other processes' changes never reach it.
    user_ttl_seconds: int = Field(30, ge=1, le=3600)


# "<limit>/<window seconds>", e.g. "20/600": 20 requests per 10 minutes.
_RULE = re.compile(r"^\s*(\d{1,5})\s*/\s*(\d{1,7})\s*$")
_ROUTE = re.compile(r"^(GET|HEAD|POST|PUT|PATCH|DELETE) (/\S*)$")


def parse_rule(text: str) -> tuple[int, int]:
    """`"20/600"` -> (20, 600); ValueError for anything else."""
    match = _RULE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not '<limit>/<window seconds>'")
    limit, window = int(match[1]), int(match[2])
    if not (1 <= limit <= 10_000 and 1 <= window <= 30 * 24 * 3600):
        raise ValueError(f"{text!r}: limit 1..10000, window 1..2592000 seconds")
    return limit, window


class RateLimitSettings(BaseModel):
    backend: Literal["memory", "redis", "memcached"] = "memory"
    key_prefix: str = "portico:ratelimit:"
    enabled: bool = True
    # When the store is down: let general traffic through (counted in
    # portico_rate_limit_fail_open_total) or answer 503. Login throttles never fail open.
    fail_open: bool = True
    window_seconds: int = Field(60, ge=1, le=24 * 3600)
    # Requests per window: per client address when anonymous, per user otherwise.
    anonymous: int = Field(300, ge=1, le=10_000)
    authenticated: int = Field(600, ge=1, le=10_000)
    # Per-user limits by tier code; tiers not listed get `authenticated`.
    tiers: dict[str, int] = Field(default_factory=dict)
    # Extra limits on single routes, "METHOD /path/{template}" -> "<limit>/<seconds>",
    # counted per user (or address) on top of the general one.
    routes: dict[str, str] = Field(
        default_factory=lambda: {
            "POST /api/v1/users": "20/600",
            "POST /api/v1/auth/password/reset-request": "20/600",
            "POST /api/v1/auth/email/verify-request": "20/600",
        }
    )
    # Password attempts (login, token sign-in, confirmations), checked before hashing.
    login_per_account: int = Field(10, ge=1, le=10_000)
    login_per_address: int = Field(100, ge=1, le=10_000)
    login_window_seconds: int = Field(15 * 60, ge=1, le=24 * 3600)

    @field_validator("tiers")
    @classmethod
    def _tier_limits(cls, value: dict[str, int]) -> dict[str, int]:
        for tier, limit in value.items():
            if not 1 <= limit <= 10_000:
                raise ValueError(f"tier {tier!r}: limit must be 1..10000")
        return value

    @field_validator("routes")
    @classmethod
    def _route_rules(cls, value: dict[str, str]) -> dict[str, str]:
        for route, rule in value.items():
            if _ROUTE.match(route) is None:
                raise ValueError(f"{route!r} is not 'METHOD /path'")
            parse_rule(rule)
        return value


class MemcachedSettings(BaseModel):
    # Comma-separated "host:port" list (a JSON list works too).
    servers: str = "127.0.0.1:11211"
    connect_timeout_seconds: float = Field(1.0, gt=0)
    timeout_seconds: float = Field(1.0, gt=0)
    # Connections per server; also the number of Memcached calls in flight per process.
    max_pool_size: int = Field(16, ge=1)


class BillingSettings(BaseModel):
    # Where refusals (no credits, feature or limit not in the plan) send people to buy
    # more; unset: the front end's `/pricing` (`PORTICO_ACCOUNTS__FRONTEND_URL`).
    upgrade_url: str | None = Field(None, pattern=r"^https?://[^\s]+$")
    # How long a user's entitlements are served from the cache at most (a change of the
    # catalog, a purchase or an override forgets them at once).
    entitlements_ttl_seconds: int = Field(300, ge=1, le=86_400)
    # A credit reservation left open (a crashed call) is closed by the sweep after this.
    reservation_ttl_seconds: int = Field(15 * 60, ge=10, le=7 * 24 * 3600)
    # Spends of at least this many credits are audited (grants and refunds always are).
    audit_spend_threshold: int = Field(1000, ge=1)


_URL = r"^https?://[^\s]+$"


class PaymentSettings(BaseModel):
    # `fake`: an in-process gateway whose checkout pages Portico serves itself (outside
    # production), so a purchase works with no account anywhere; `stripe`: Stripe.
    backend: Literal["fake", "stripe"] = "fake"
    # Where the gateway sends the user back to; unset: the front end's `/billing/...`
    # pages (`PORTICO_ACCOUNTS__FRONTEND_URL`).
    success_url: str | None = Field(None, pattern=_URL)
    cancel_url: str | None = Field(None, pattern=_URL)
    portal_return_url: str | None = Field(None, pattern=_URL)
    # A past-due subscription keeps its tier this long after the first failed renewal.
    grace_period_days: int = Field(7, ge=0, le=60)
    # How far back the first reconciliation looks (Stripe keeps events 30 days).
    first_reconcile_lookback_hours: int = Field(72, ge=1, le=720)
    # Every gateway call: its timeout, and retries of what is safe to retry.
    timeout_seconds: float = Field(10.0, gt=0, le=120)
    max_retries: int = Field(2, ge=0, le=5)


class StripeSettings(BaseModel):
    # `sk_live_...` in production (the security check refuses test keys there).
    api_key: SecretStr | None = None
    # The endpoint's signing secret (`whsec_...`); unset with the fake gateway: a random
    # one per process (its events are signed and checked in the same process).
    webhook_secret: SecretStr | None = None
    # Where the SDK sends its requests (tests point it at a local fake); unset: Stripe.
    api_base: str | None = Field(None, pattern=_URL)
    # How old (or how far in the future) a webhook's signed timestamp may be.
    webhook_tolerance_seconds: int = Field(300, ge=1, le=3600)


class LlmSettings(BaseModel):
    # `fake`: a scripted model in process (deterministic replies, no network); `openai`:
    # any OpenAI-compatible server (OpenAI, vLLM, Ollama, llama.cpp, OpenRouter...).
    backend: Literal["fake", "openai"] = "fake"
    base_url: str | None = Field(None, pattern=_URL)
    api_key: SecretStr | None = None
    # What a conversation created without a model uses (it needs a price: `portico seed`
    # prices the fake's model).
    default_model: str = Field("portico-fake", min_length=1, max_length=200)
    # Every reply's bound, and the worst case a send reserves credits for.
    max_output_tokens: int = Field(1024, ge=1, le=200_000)
    # The most (estimated) tokens of history sent with a message.
    history_token_budget: int = Field(8000, ge=100, le=2_000_000)
    # A model call's bound, a stream included from the request to its last token.
    timeout_seconds: float = Field(60.0, gt=0, le=900)
    # Retries of a failed request, only before its first token.
    max_retries: int = Field(2, ge=0, le=5)
    # The charging rule: one credit per this many micro-units of cost, rounded up
    # (1000: one credit per $0.001).
    micros_per_credit: int = Field(1000, ge=1)
    # The fake's pace: seconds per token it streams (0: as fast as it can).
    fake_latency_per_token_seconds: float = Field(0.0, ge=0, le=10)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PORTICO_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    env: Literal["development", "test", "production"] = "development"
    debug: bool = False
    secret_key: SecretStr | None = None
    log_level: str = "INFO"

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    sessions: SessionSettings = Field(default_factory=SessionSettings)
    passwords: PasswordSettings = Field(default_factory=PasswordSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    accounts: AccountSettings = Field(default_factory=AccountSettings)
    email: EmailSettings = Field(default_factory=EmailSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)
    celery: CelerySettings = Field(default_factory=CelerySettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    tokens: TokenSettings = Field(default_factory=TokenSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    memcached: MemcachedSettings = Field(default_factory=MemcachedSettings)
    oauth: OAuthSettings = Field(default_factory=OAuthSettings)
    billing: BillingSettings = Field(default_factory=BillingSettings)
    payments: PaymentSettings = Field(default_factory=PaymentSettings)
    stripe: StripeSettings = Field(default_factory=StripeSettings)
    llm: LlmSettings = Field(default_factory=LlmSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    admin: AdminSettings = Field(default_factory=AdminSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)

    _secret_key_generated: bool = PrivateAttr(default=False)

    @model_validator(mode="after")
    def _fill_secret_key(self) -> Settings:
        if self.secret_key is None:
            self.secret_key = SecretStr(secrets.token_urlsafe(48))
            self._secret_key_generated = True
        return self

    @model_validator(mode="after")
    def _admin_needs_sql(self) -> Settings:
        if self.admin.enabled and self.database.backend != "sql":
            raise ValueError("admin.enabled needs database.backend=sql (SQLAdmin reads tables)")
        return self

    @property
    def secret_key_generated(self) -> bool:
        """True when no secret key was configured and a random one was made for this process."""
        return self._secret_key_generated

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def cookie_secure(self) -> bool:
        if self.sessions.cookie_secure is None:
            return self.is_production
        return self.sessions.cookie_secure

    @property
    def session_cookie_name(self) -> str:
        # `__Host-` makes browsers refuse the cookie unless Secure, Path=/ and no Domain.
        return (
            f"__Host-{self.sessions.cookie_name}"
            if self.cookie_secure
            else self.sessions.cookie_name
        )

    def secret(self) -> str:
        assert self.secret_key is not None  # filled by the validator
        return self.secret_key.get_secret_value()
