"""Configurations for the security check tests: the known-good one, and the cases.

`BAD_CASES` and `QUIET_CASES` serve both the rule tests (each fires, or stays quiet) and
the declaration tests (every finding they produce names a variable its rule declares).
"""

from __future__ import annotations

import random
import string
from typing import Any

from entrypoints.bootstrap.security_check import Finding
from entrypoints.bootstrap.settings import Settings
from tests.settings_merge import merge

URLSAFE = string.ascii_letters + string.digits + "-_"
# Generated once from a fixed seed, so the suite is deterministic (a random key per run
# would be checked against the word lists afresh each time).
GOOD_SECRET = "".join(random.Random(7).choices(URLSAFE, k=64))
DB_PASSWORD = "Vd8-kQ2_rT7xLm4pZ9wN"
REDIS_PASSWORD = "p7Rk2LmQ9xVd4TzW"
METRICS_TOKEN = "".join(random.Random(13).choices(URLSAFE, k=43))

# A configuration production should accept without a single finding.
GOOD: dict[str, Any] = {
    "env": "production",
    "secret_key": GOOD_SECRET,
    "database": {"url": f"postgresql+asyncpg://portico:{DB_PASSWORD}@db.internal:5432/portico"},
    "redis": {"url": f"rediss://:{REDIS_PASSWORD}@redis.internal:6380"},
    "sessions": {"backend": "redis"},
    "rate_limit": {"backend": "redis"},
    "email": {"backend": "smtp", "from_address": "Portico <no-reply@example.com>"},
    "smtp": {
        "host": "smtp.example.com",
        "port": 587,
        "starttls": True,
        "username": "portico",
        "password": "smtp-Kq8vT3xZ",
    },
    "accounts": {"frontend_url": "https://app.example.com"},
    "http": {"docs_enabled": False, "trusted_origins": ["https://app.example.com"]},
    "jobs": {"runner": "celery"},
    "celery": {"broker_url": "amqps://portico:Mq4vR8sLx2@mq.internal:5671/portico"},
    "payments": {"backend": "stripe"},
    "llm": {
        "backend": "openai",
        "base_url": "https://llm.example.com/v1",
        "api_key": "sk-Lq8vT3xZm4Wd",
        "default_model": "gpt-4o-mini",
    },
    "stripe": {"api_key": "sk_live_" + GOOD_SECRET[:24], "webhook_secret": "whsec_Tq8vK3xZm4"},
    "metrics": {"token": METRICS_TOKEN},
}


# OAuth sign-in configured as production wants it (added to GOOD by the OAuth cases).
GOOD_OAUTH: dict[str, Any] = {
    "backend": "http",
    "redirect_base_url": "https://api.example.com",
    "github": {"client_id": "gh-client", "client_secret": "gh-Zq8vT3xK"},
    "google": {"client_id": "g-client", "client_secret": "g-Wm4pR7sL"},
}

# Every provider endpoint over plain http (merged into GOOD_OAUTH).
HTTP_OAUTH_ENDPOINTS: dict[str, Any] = {
    "github": {
        **GOOD_OAUTH["github"],
        "authorize_url": "http://gh.example/authorize",
        "token_url": "http://gh.example/token",
        "userinfo_url": "http://gh.example/user",
        "emails_url": "http://gh.example/emails",
    },
    "google": {
        **GOOD_OAUTH["google"],
        "authorize_url": "http://g.example/authorize",
        "token_url": "http://g.example/token",
        "userinfo_url": "http://g.example/userinfo",
    },
}


def production(**overrides: Any) -> Settings:
    """The known-good production settings with nested `overrides` applied."""
    return Settings(_env_file=None, **merge(GOOD, overrides))  # type: ignore[call-arg]


def rules_of(findings: list[Finding]) -> set[str]:
    return {f.rule for f in findings}


# (id, overrides, expected rule ids, expected severity of each)
BAD_CASES: list[tuple[str, dict[str, Any], set[str], str]] = [
    (
        "admin for every address",
        {"admin": {"enabled": True}},
        {"admin.allowed_networks_missing"},
        "error",
    ),
    (
        "admin allowing 0.0.0.0/0",
        {"admin": {"enabled": True, "allowed_networks": ["10.0.0.0/8", "0.0.0.0/0"]}},
        {"admin.allowed_networks_everyone"},
        "error",
    ),
    ("fake model", {"llm": {"backend": "fake"}}, {"llm.fake_model"}, "error"),
    (
        "fake default model",
        {"llm": {"default_model": "portico-fake"}},
        {"llm.fake_default_model"},
        "error",
    ),
    ("llm without base url", {"llm": {"base_url": None}}, {"llm.base_url_missing"}, "error"),
    ("llm without key", {"llm": {"api_key": None}}, {"llm.api_key_missing"}, "error"),
    (
        "llm over plain http",
        {"llm": {"base_url": "http://llm.example.com/v1"}},
        {"llm.base_url_plain_http"},
        "warning",
    ),
    ("fake gateway", {"payments": {"backend": "fake"}}, {"payments.fake_gateway"}, "error"),
    (
        "stripe test key",
        {"stripe": {"api_key": "sk_test_" + GOOD_SECRET[:24]}},
        {"stripe.test_key"},
        "error",
    ),
    (
        "restricted test key",
        {"stripe": {"api_key": "rk_test_" + GOOD_SECRET[:24]}},
        {"stripe.test_key"},
        "error",
    ),
    ("stripe key missing", {"stripe": {"api_key": None}}, {"stripe.api_key_missing"}, "error"),
    (
        "stripe key of no known kind",
        {"stripe": {"api_key": GOOD_SECRET[:32]}},
        {"stripe.unknown_key"},
        "warning",
    ),
    (
        "webhook secret missing",
        {"stripe": {"webhook_secret": None}},
        {"stripe.webhook_secret_missing"},
        "error",
    ),
    (
        "stripe api over http",
        {"stripe": {"api_base": "http://stripe.internal"}},
        {"stripe.api_base_insecure"},
        "error",
    ),
    (
        "stripe api elsewhere",
        {"stripe": {"api_base": "https://stripe-proxy.internal"}},
        {"stripe.api_base_set"},
        "warning",
    ),
    ("secret missing", {"secret_key": None}, {"secret_key.missing"}, "error"),
    ("secret short", {"secret_key": GOOD_SECRET[:31]}, {"secret_key.short"}, "error"),
    (
        "secret word",
        {"secret_key": "changeme-" + GOOD_SECRET[:40]},
        {"secret_key.predictable"},
        "error",
    ),
    (
        "secret short words",
        {"secret_key": "dev-key-used-on-laptops-only-0042"},
        {"secret_key.predictable"},
        "error",
    ),
    ("secret one char", {"secret_key": "k" * 48}, {"secret_key.predictable"}, "error"),
    ("secret periodic", {"secret_key": "Ab3$Xy7!Qz" * 4}, {"secret_key.predictable"}, "error"),
    (
        "secret sequence",
        {"secret_key": "abcdefghij" + GOOD_SECRET[:30]},
        {"secret_key.predictable"},
        "error",
    ),
    ("debug", {"debug": True}, {"debug"}, "error"),
    (
        "cookie not secure",
        {"sessions": {"cookie_secure": False}},
        {"sessions.cookie_insecure"},
        "error",
    ),
    (
        "idle timeout",
        {"sessions": {"idle_timeout_seconds": 9 * 3600}},
        {"sessions.idle_timeout_too_long"},
        "error",
    ),
    (
        "absolute lifetime",
        {"sessions": {"absolute_lifetime_seconds": 31 * 24 * 3600}},
        {"sessions.absolute_lifetime_too_long"},
        "error",
    ),
    ("memory sessions", {"sessions": {"backend": "memory"}}, {"sessions.memory_store"}, "error"),
    (
        "access token lifetime",
        {"tokens": {"access_ttl_seconds": 2 * 3600}},
        {"tokens.access_ttl_too_long"},
        "warning",
    ),
    (
        "refresh token lifetime",
        {"tokens": {"refresh_ttl_seconds": 180 * 24 * 3600}},
        {"tokens.refresh_ttl_too_long"},
        "warning",
    ),
    ("memory database", {"database": {"backend": "memory"}}, {"database.memory"}, "error"),
    (
        "sqlite",
        {"database": {"url": "sqlite+aiosqlite:///./var/portico.db"}},
        {"database.sqlite"},
        "error",
    ),
    (
        "postgres/postgres",
        {"database": {"url": "postgresql+asyncpg://postgres:postgres@db.internal/portico"}},
        {"database.password_default"},
        "error",
    ),
    (
        "password is the user name",
        {"database": {"url": "postgresql+asyncpg://portico:portico@db.internal/portico"}},
        {"database.password_default"},
        "error",
    ),
    (
        "no database password",
        {"database": {"url": "postgresql+asyncpg://portico@db.internal:5432/portico"}},
        {"database.password_empty"},
        "error",
    ),
    (
        "empty database password",
        {"database": {"url": "postgresql+asyncpg://portico:@db.internal:5432/portico"}},
        {"database.password_empty"},
        "error",
    ),
    ("invalid database url", {"database": {"url": "not a url"}}, {"database.url_invalid"}, "error"),
    ("auto create", {"database": {"auto_create": True}}, {"database.auto_create"}, "error"),
    (
        "weak hashing allowed",
        {"passwords": {"allow_weak_hashing": True}},
        {"passwords.weak_hashing_allowed"},
        "error",
    ),
    (
        "argon2 memory",
        {"passwords": {"argon2_memory_kib": 1024}},
        {"passwords.argon2_below_floor"},
        "error",
    ),
    (
        "argon2 time",
        {"passwords": {"argon2_time_cost": 1}},
        {"passwords.argon2_below_floor"},
        "error",
    ),
    ("redis url missing", {"redis": {"url": None}}, {"redis.url_missing"}, "error"),
    (
        "redis without password",
        {"redis": {"url": "rediss://redis.internal:6380"}},
        {"redis.no_password"},
        "error",
    ),
    (
        "redis without tls",
        {"redis": {"url": f"redis://:{REDIS_PASSWORD}@redis.internal:6379"}},
        {"redis.no_tls"},
        "warning",
    ),
    (
        "redis broker without password",
        {"celery": {"broker_url": "rediss://broker.internal:6380/0"}},
        {"redis.no_password"},
        "error",
    ),
    (
        "amqp guest account",
        {"celery": {"broker_url": "amqps://guest:guest@mq.internal:5671/"}},
        {"celery.broker_credentials"},
        "error",
    ),
    (
        "amqp without tls",
        {"celery": {"broker_url": "amqp://portico:Mq4vR8sLx2@mq.internal:5672/portico"}},
        {"celery.broker_no_tls"},
        "warning",
    ),
    (
        "amqp without password",
        {"celery": {"broker_url": "amqps://portico@mq.internal:5671/portico"}},
        {"celery.broker_credentials"},
        "error",
    ),
    (
        "redis broker without tls",
        {"celery": {"broker_url": f"redis://:{REDIS_PASSWORD}@broker.internal:6379/0"}},
        {"redis.no_tls"},
        "warning",
    ),
    ("celery without broker", {"celery": {"broker_url": None}}, {"celery.broker_missing"}, "error"),
    ("wildcard origin", {"http": {"trusted_origins": ["*"]}}, {"http.trusted_origins"}, "error"),
    (
        "wildcard subdomain",
        {"http": {"trusted_origins": ["https://*.example.com"]}},
        {"http.trusted_origins"},
        "error",
    ),
    (
        "http origin",
        {"http": {"trusted_origins": ["http://app.example.com"]}},
        {"http.trusted_origins"},
        "error",
    ),
    ("null origin", {"http": {"trusted_origins": ["null"]}}, {"http.trusted_origins"}, "error"),
    ("console email", {"email": {"backend": "console"}}, {"email.backend"}, "error"),
    ("memory email", {"email": {"backend": "memory"}}, {"email.backend"}, "error"),
    ("smtp without tls", {"smtp": {"starttls": False}}, {"smtp.no_tls"}, "warning"),
    (
        "http front end",
        {"accounts": {"frontend_url": "http://app.example.com"}},
        {"accounts.frontend_url_not_https"},
        "error",
    ),
    (
        "fake oauth provider",
        {"oauth": {**GOOD_OAUTH, "backend": "memory"}},
        {"oauth.memory"},
        "error",
    ),
    (
        "oauth callback over http",
        {"oauth": {**GOOD_OAUTH, "redirect_base_url": "http://api.example.com"}},
        {"oauth.redirect_not_https"},
        "error",
    ),
    (
        "oauth endpoint over http",
        {
            "oauth": {
                **GOOD_OAUTH,
                "github": {**GOOD_OAUTH["github"], "token_url": "http://gh.example/token"},
            }
        },
        {"oauth.endpoint_not_https"},
        "error",
    ),
    (
        "every oauth endpoint over http",
        {"oauth": {**GOOD_OAUTH, **HTTP_OAUTH_ENDPOINTS}},
        {"oauth.endpoint_not_https"},
        "error",
    ),
    ("docs enabled", {"http": {"docs_enabled": True}}, {"http.docs_enabled"}, "warning"),
    (
        "rate limits in process",
        {"rate_limit": {"backend": "memory"}},
        {"rate_limit.memory_store"},
        "warning",
    ),
    ("rate limits off", {"rate_limit": {"enabled": False}}, {"rate_limit.disabled"}, "warning"),
    ("wildcard cors", {"http": {"cors_origins": ["*"]}}, {"http.cors_origins"}, "error"),
    (
        "http cors origin",
        {"http": {"cors_origins": ["https://app.example.com", "http://old.example.com"]}},
        {"http.cors_origins"},
        "error",
    ),
    ("metrics open", {"metrics": {"token": None}}, {"metrics.unprotected"}, "error"),
    (
        "metrics token short",
        {"metrics": {"token": "short-token"}},
        {"metrics.token_short"},
        "error",
    ),
    (
        "metrics for every address",
        {"metrics": {"token": None, "allowed_networks": ["10.0.0.0/8", "::/0"]}},
        {"metrics.every_network"},
        "error",
    ),
    (
        "every proxy trusted",
        {"http": {"trusted_proxies": ["10.0.0.0/8", "0.0.0.0/0"]}},
        {"http.trust_every_proxy"},
        "error",
    ),
]

# Configurations that look suspicious but are fine: no finding at all.
QUIET_CASES: list[tuple[str, dict[str, Any]]] = [
    # The admin panel reachable from the operators' network only.
    (
        "admin from a private network",
        {"admin": {"enabled": True, "allowed_networks": ["10.8.0.0/16"]}},
    ),
    # A model server on the same machine (vLLM, Ollama) over plain http.
    ("local model server", {"llm": {"base_url": "http://127.0.0.1:11434/v1"}}),
    # Unix socket with peer authentication: no password needed.
    (
        "database on a unix socket",
        {"database": {"url": "postgresql+asyncpg://portico@/portico?host=/var/run/postgresql"}},
    ),
    # Plain Redis and SMTP on the same machine never cross a network.
    ("local plain redis", {"redis": {"url": f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379"}}),
    ("local plain smtp", {"smtp": {"host": "localhost", "port": 25, "starttls": False}}),
    ("smtp over implicit tls", {"smtp": {"starttls": False, "use_tls": True, "port": 465}}),
    # An environment label in front of a random key.
    ("labelled random key", {"secret_key": "prod-" + GOOD_SECRET[:40]}),
    ("no celery", {"jobs": {"runner": "inline"}, "celery": {"broker_url": None}}),
    # A front end elsewhere, over https; metrics by network instead of a token.
    ("cors for the front end", {"http": {"cors_origins": ["https://app.example.com"]}}),
    (
        "metrics by network",
        {"metrics": {"token": None, "allowed_networks": ["10.0.0.0/8", "fd00::/8"]}},
    ),
    # OAuth over https with real providers; or a fake backend nobody can reach.
    ("oauth over https", {"oauth": GOOD_OAUTH}),
    (
        "fake oauth, no provider enabled",
        {"oauth": {"backend": "memory", "redirect_base_url": "http://localhost:8000"}},
    ),
]
