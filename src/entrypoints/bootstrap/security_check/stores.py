"""Shared stores: Redis, the rate-limit counters and the Celery broker."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

from entrypoints.bootstrap.security_check.model import Finding, env_var, error, rule, warning
from entrypoints.bootstrap.security_check.urls import is_loopback, url_credentials
from entrypoints.bootstrap.settings import Settings

# RabbitMQ's built-in account (only allowed from localhost by RabbitMQ itself, but images
# and compose files often re-enable it).
_DEFAULT_AMQP_CREDENTIALS = frozenset({("guest", "guest")})

_SESSIONS_BACKEND = "sessions.backend"
_CACHE_BACKEND = "cache.backend"
_RATE_LIMIT_BACKEND = "rate_limit.backend"
_RATE_LIMIT_ENABLED = "rate_limit.enabled"
_REDIS_URL = "redis.url"
_BROKER_URL = "celery.broker_url"
_RUNNER = "jobs.runner"

# The settings `_redis_selected_by` and `_celery_broker` read, for the rules that use them.
_REDIS_SELECTORS = (_SESSIONS_BACKEND, _CACHE_BACKEND, _RATE_LIMIT_BACKEND)
_BROKER_READS = (_BROKER_URL, _RUNNER)


def _redis_selected_by(settings: Settings) -> list[str]:
    """The setting paths that select a Redis backend."""
    backends = (
        (_SESSIONS_BACKEND, settings.sessions.backend),
        (_CACHE_BACKEND, settings.cache.backend),
        (_RATE_LIMIT_BACKEND, settings.rate_limit.backend),
    )
    return [path for path, backend in backends if backend == "redis"]


def _celery_broker(settings: Settings) -> str | None:
    """The broker URL when Celery is in use (runner or a configured broker), else None."""
    broker = settings.celery.broker_url
    if broker or settings.jobs.runner == "celery":
        return broker
    return None


def _redis_urls(settings: Settings) -> list[tuple[str, str]]:
    """(setting path, URL) of every Redis connection this configuration opens."""
    urls: list[tuple[str, str]] = []
    # An unused URL opens no connection, so it is checked only once a backend selects it.
    if settings.redis.url and _redis_selected_by(settings):
        urls.append((_REDIS_URL, settings.redis.url))
    broker = _celery_broker(settings)
    if broker and urlsplit(broker).scheme.lower() in ("redis", "rediss"):
        urls.append((_BROKER_URL, broker))
    return urls


@rule(_RATE_LIMIT_BACKEND)
def rate_limit_store(settings: Settings) -> Iterator[Finding]:
    # In-process counts are per process: behind N workers every limit (and the sign-in
    # throttle) is N times looser, and a restart forgets them.
    if settings.rate_limit.backend == "memory":
        yield warning(
            "rate_limit.memory_store",
            _RATE_LIMIT_BACKEND,
            f"{env_var(_RATE_LIMIT_BACKEND)}=memory counts per process, so limits and "
            "sign-in throttles loosen with every worker; set it to redis or memcached",
        )


@rule(_RATE_LIMIT_ENABLED)
def rate_limits_disabled(settings: Settings) -> Iterator[Finding]:
    if not settings.rate_limit.enabled:
        yield warning(
            "rate_limit.disabled",
            _RATE_LIMIT_ENABLED,
            f"{env_var(_RATE_LIMIT_ENABLED)}=false serves every client without limits",
        )


@rule(*_REDIS_SELECTORS, _REDIS_URL)
def redis_url_missing(settings: Settings) -> Iterator[Finding]:
    selected = _redis_selected_by(settings)
    if selected and not settings.redis.url:
        yield error(
            "redis.url_missing",
            _REDIS_URL,
            f"{', '.join(env_var(path) for path in selected)} select Redis but "
            f"{env_var(_REDIS_URL)} is not set",
        )


@rule(*_REDIS_SELECTORS, _REDIS_URL, *_BROKER_READS)
def redis_password(settings: Settings) -> Iterator[Finding]:
    for path, url in _redis_urls(settings):
        if urlsplit(url).scheme.lower() == "unix":
            continue  # a socket file: access is governed by its permissions
        _, password = url_credentials(url)
        if not password:
            yield error(
                "redis.no_password",
                path,
                f"{env_var(path)} has no password: anyone who reaches the server reads and "
                "writes sessions; use redis://:PASSWORD@host (or rediss://)",
            )


@rule(*_REDIS_SELECTORS, _REDIS_URL, *_BROKER_READS)
def redis_tls(settings: Settings) -> Iterator[Finding]:
    for path, url in _redis_urls(settings):
        parts = urlsplit(url)
        if parts.scheme.lower() == "redis" and not is_loopback(parts.hostname):
            yield warning(
                "redis.no_tls",
                path,
                f"{env_var(path)} uses redis:// to a host that is not local: traffic (session "
                "data, password) is unencrypted; use rediss:// unless the network is private",
            )


@rule(*_BROKER_READS)
def celery_broker_missing(settings: Settings) -> Iterator[Finding]:
    if settings.jobs.runner == "celery" and not settings.celery.broker_url:
        yield error(
            "celery.broker_missing",
            _BROKER_URL,
            f"{env_var(_RUNNER)}=celery but {env_var(_BROKER_URL)} is not set",
        )


@rule(*_BROKER_READS)
def amqp_broker(settings: Settings) -> Iterator[Finding]:
    broker = _celery_broker(settings)
    if not broker or urlsplit(broker).scheme.lower() not in ("amqp", "amqps", "pyamqp"):
        return
    name = env_var(_BROKER_URL)
    username, password = url_credentials(broker)
    if not password or (username or "", password) in _DEFAULT_AMQP_CREDENTIALS:
        yield error(
            "celery.broker_credentials",
            _BROKER_URL,
            f"{name} has no password or RabbitMQ's default guest account; create a user "
            "with a strong password",
        )
    parts = urlsplit(broker)
    if parts.scheme.lower() != "amqps" and not is_loopback(parts.hostname):
        yield warning(
            "celery.broker_no_tls",
            _BROKER_URL,
            f"{name} uses plain AMQP to a host that is not local; use amqps:// unless the "
            "network is private",
        )
