"""The production security check: each rule, the CLI report, and the start it refuses."""

from __future__ import annotations

import json
import random
import string
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers
from pydantic import BaseModel, Field

from entrypoints.bootstrap.container import build_container
from entrypoints.bootstrap.runtime import start_runtime
from entrypoints.bootstrap.security_check import (
    RULES,
    Finding,
    SecurityCheckFailed,
    check_settings,
    secret_key_weakness,
)
from entrypoints.bootstrap.settings import Settings
from entrypoints.cli import main

URLSAFE = string.ascii_letters + string.digits + "-_"
# Generated once from a fixed seed, so the suite is deterministic (a random key per run
# would be checked against the word lists afresh each time).
GOOD_SECRET = "".join(random.Random(7).choices(URLSAFE, k=64))
DB_PASSWORD = "Vd8-kQ2_rT7xLm4pZ9wN"
REDIS_PASSWORD = "p7Rk2LmQ9xVd4TzW"

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
}


# OAuth sign-in configured as production wants it (added to GOOD by the OAuth cases).
GOOD_OAUTH: dict[str, Any] = {
    "backend": "http",
    "redirect_base_url": "https://api.example.com",
    "github": {"client_id": "gh-client", "client_secret": "gh-Zq8vT3xK"},
    "google": {"client_id": "g-client", "client_secret": "g-Wm4pR7sL"},
}


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def production(cls: type[Settings] = Settings, **overrides: Any) -> Settings:
    """The known-good production settings with nested `overrides` applied."""
    return cls(_env_file=None, **_merge(GOOD, overrides))  # type: ignore[call-arg]


@pytest.fixture(autouse=True)
def _no_portico_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The machine's PORTICO_* variables or a `.env` must not leak into these settings."""
    import os

    for name in list(os.environ):
        if name.startswith("PORTICO_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def rules_of(findings: list[Finding]) -> set[str]:
    return {f.rule for f in findings}


# --- the known-good configuration ------------------------------------------------------


def test_a_good_production_configuration_has_no_findings() -> None:
    assert check_settings(production()) == []


def test_rules_are_registered_once_each() -> None:
    assert len(set(RULES)) == len(RULES)


# --- each rule fires on a bad value ----------------------------------------------------

# (id, overrides, expected rule ids, expected severity of each)
BAD_CASES: list[tuple[str, dict[str, Any], set[str], str]] = [
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
    ("docs enabled", {"http": {"docs_enabled": True}}, {"http.docs_enabled"}, "warning"),
    (
        "rate limits in process",
        {"rate_limit": {"backend": "memory"}},
        {"rate_limit.memory_store"},
        "warning",
    ),
    ("rate limits off", {"rate_limit": {"enabled": False}}, {"rate_limit.disabled"}, "warning"),
    (
        "every proxy trusted",
        {"http": {"trusted_proxies": ["10.0.0.0/8", "0.0.0.0/0"]}},
        {"http.trust_every_proxy"},
        "error",
    ),
]


@pytest.mark.parametrize(
    ("overrides", "expected", "severity"),
    [pytest.param(o, e, s, id=i) for i, o, e, s in BAD_CASES],
)
def test_each_rule_fires_on_a_bad_setting(
    overrides: dict[str, Any], expected: set[str], severity: str
) -> None:
    findings = check_settings(production(**overrides))
    assert rules_of(findings) == expected
    assert {f.severity for f in findings} == {severity}
    for finding in findings:
        # The message names the variable to change, and never quotes a secret.
        assert finding.setting.startswith("PORTICO_")
        assert finding.setting in finding.message
        for secret in (GOOD_SECRET, DB_PASSWORD, REDIS_PASSWORD, "Mq4vR8sLx2", "guest:guest"):
            assert secret not in finding.message


def test_every_secret_key_problem_is_reported_at_once() -> None:
    findings = check_settings(production(secret_key="changeme"))
    assert rules_of(findings) == {"secret_key.short", "secret_key.predictable"}


def test_quiet_cases_that_look_suspicious_but_are_fine() -> None:
    quiet = [
        # Unix socket with peer authentication: no password needed.
        {"database": {"url": "postgresql+asyncpg://portico@/portico?host=/var/run/postgresql"}},
        # Plain Redis and SMTP on the same machine never cross a network.
        {"redis": {"url": f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379"}},
        {"smtp": {"host": "localhost", "port": 25, "starttls": False}},
        {"smtp": {"starttls": False, "use_tls": True, "port": 465}},
        # An environment label in front of a random key.
        {"secret_key": "prod-" + GOOD_SECRET[:40]},
        {"jobs": {"runner": "inline"}, "celery": {"broker_url": None}},
        # OAuth over https with real providers; or a fake backend nobody can reach.
        {"oauth": GOOD_OAUTH},
        {"oauth": {"backend": "memory", "redirect_base_url": "http://localhost:8000"}},
    ]
    for overrides in quiet:
        assert check_settings(production(**overrides)) == [], overrides


def test_generated_keys_are_never_called_predictable() -> None:
    rng = random.Random(11)
    for length in (32, 43, 64):
        for alphabet in (URLSAFE, string.hexdigits.lower()[:16]):
            for _ in range(500):
                key = "".join(rng.choices(alphabet, k=length))
                assert secret_key_weakness(key) is None, key


def test_the_check_evaluates_as_production_whatever_the_environment() -> None:
    # Unset, the cookie flag resolves to Secure in production, so it is no finding...
    dev = production(env="development", sessions={"cookie_secure": None})
    assert not dev.cookie_secure
    assert check_settings(dev) == []
    # ...and the development defaults are reported as they would be in production.
    assert {"secret_key.missing", "database.sqlite", "email.backend"} <= rules_of(
        check_settings(Settings(_env_file=None))  # type: ignore[call-arg]
    )


# --- rules for settings that do not exist yet (applied once they do) --------------------


class AdminSettings(BaseModel):
    enabled: bool = False
    allowed_ips: list[str] = Field(default_factory=list)


class CorsSettings(BaseModel):
    allow_origins: list[str] = Field(default_factory=list)


class BackendSettings(BaseModel):
    backend: str = "memory"


class FutureSettings(Settings):
    """Settings as they may look once the admin panel, CORS, payments, LLM and cache land."""

    admin: AdminSettings = Field(default_factory=AdminSettings)
    cors: CorsSettings = Field(default_factory=CorsSettings)
    payments: BackendSettings = Field(default_factory=lambda: BackendSettings(backend="stripe"))
    llm: BackendSettings = Field(default_factory=lambda: BackendSettings(backend="openai"))
    cache: BackendSettings = Field(default_factory=BackendSettings)


@pytest.mark.parametrize(
    ("overrides", "expected", "severity"),
    [
        pytest.param({}, set(), "", id="good"),
        pytest.param({"admin": {"enabled": False}}, set(), "", id="admin off"),
        pytest.param(
            {"admin": {"enabled": True, "allowed_ips": ["10.8.0.0/16"]}}, set(), "", id="admin vpn"
        ),
        pytest.param(
            {"admin": {"enabled": True}}, {"admin.no_ip_allow_list"}, "error", id="admin open"
        ),
        pytest.param(
            {"admin": {"enabled": True, "allowed_ips": ["0.0.0.0/0"]}},
            {"admin.no_ip_allow_list"},
            "error",
            id="admin everyone",
        ),
        pytest.param(
            {"cors": {"allow_origins": ["*"]}}, {"http.trusted_origins"}, "error", id="cors *"
        ),
        pytest.param({"payments": {"backend": "fake"}}, {"payments.fake"}, "error", id="payments"),
        pytest.param({"llm": {"backend": "fake"}}, {"llm.fake"}, "warning", id="llm"),
        pytest.param(
            {"cache": {"backend": "redis"}, "sessions": {"backend": "memory"}},
            {"sessions.memory_store"},
            "error",
            id="cache on redis",
        ),
        pytest.param(
            {"cache": {"backend": "redis"}, "redis": {"url": "rediss://redis.internal:6380"}},
            {"redis.no_password"},
            "error",
            id="cache redis no password",
        ),
    ],
)
def test_rules_for_settings_added_later(
    overrides: dict[str, Any], expected: set[str], severity: str
) -> None:
    findings = check_settings(production(FutureSettings, **overrides))
    assert rules_of(findings) == expected
    assert {f.severity for f in findings} == ({severity} if expected else set())
    for finding in findings:
        assert finding.setting in finding.message


def test_cors_findings_name_the_cors_variable() -> None:
    findings = check_settings(production(FutureSettings, cors={"allow_origins": ["*"]}))
    assert [f.setting for f in findings] == ["PORTICO_CORS__ALLOW_ORIGINS"]


# --- the CLI ----------------------------------------------------------------------------


def _good_environment(monkeypatch: pytest.MonkeyPatch, **extra: str) -> None:
    values = {
        "PORTICO_ENV": "production",
        "PORTICO_SECRET_KEY": GOOD_SECRET,
        "PORTICO_DATABASE__URL": GOOD["database"]["url"],
        "PORTICO_REDIS__URL": GOOD["redis"]["url"],
        "PORTICO_SESSIONS__BACKEND": "redis",
        "PORTICO_RATE_LIMIT__BACKEND": "redis",
        "PORTICO_EMAIL__BACKEND": "smtp",
        "PORTICO_SMTP__HOST": "smtp.example.com",
        "PORTICO_SMTP__PORT": "587",
        "PORTICO_SMTP__STARTTLS": "true",
        "PORTICO_ACCOUNTS__FRONTEND_URL": "https://app.example.com",
        "PORTICO_HTTP__DOCS_ENABLED": "false",
        "PORTICO_HTTP__TRUSTED_ORIGINS": '["https://app.example.com"]',
    }
    for name, value in {**values, **extra}.items():
        monkeypatch.setenv(name, value)


def test_check_config_passes_a_good_configuration(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _good_environment(monkeypatch)
    assert main(["check-config"]) == 0
    out = capsys.readouterr().out
    assert "enforced at every start" in out
    assert "0 error(s), 0 warning(s)" in out


def test_check_config_warnings_alone_exit_zero(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _good_environment(monkeypatch, PORTICO_HTTP__DOCS_ENABLED="true")
    assert main(["check-config"]) == 0
    out = capsys.readouterr().out
    assert "WARNING  http.docs_enabled: " in out
    assert "0 error(s), 1 warning(s)" in out


def test_check_config_reports_every_error_without_printing_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    weak_secret = "my-very-own-secret-key-abc"
    _good_environment(
        monkeypatch,
        PORTICO_SECRET_KEY=weak_secret,
        PORTICO_DATABASE__URL="postgresql+asyncpg://postgres:postgres@db.internal/portico",
        PORTICO_DEBUG="true",
    )
    assert main(["check-config"]) == 1
    captured = capsys.readouterr()
    for rule in ("secret_key.short", "secret_key.predictable", "database.password_default"):
        assert f"ERROR    {rule}: " in captured.out
    assert "ERROR    debug: " in captured.out
    assert "4 error(s), 0 warning(s): a production start would be refused." in captured.out
    assert weak_secret not in captured.out + captured.err
    assert "postgres:postgres" not in captured.out + captured.err


def test_check_config_json_report(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _good_environment(
        monkeypatch, PORTICO_ENV="development", PORTICO_SESSIONS__COOKIE_SECURE="false"
    )
    assert main(["check-config", "--json"]) == 1
    out = capsys.readouterr().out
    report = json.loads(out)
    assert report["evaluated_as"] == "production"
    assert report["env"] == "development"
    assert report["enforced"] is False
    assert report["ok"] is False
    assert (report["errors"], report["warnings"]) == (1, 0)
    assert report["findings"] == [
        {
            "rule": "sessions.cookie_insecure",
            "severity": "error",
            "setting": "PORTICO_SESSIONS__COOKIE_SECURE",
            "message": report["findings"][0]["message"],
        }
    ]
    assert GOOD_SECRET not in out


def test_check_config_outside_production_says_it_evaluates_as_production(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The embedded defaults: a development machine with nothing configured.
    assert main(["check-config"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("Checking the configuration as production (PORTICO_ENV=development")
    assert "ERROR    secret_key.missing: " in out


# --- start_runtime ----------------------------------------------------------------------


async def test_production_start_with_a_bad_configuration_refuses_before_building(
    tmp_path: Path,
) -> None:
    db_file = tmp_path / "p.db"
    weak_secret = "dev-secret"
    settings = production(
        secret_key=weak_secret,
        debug=True,
        database={"url": f"sqlite+aiosqlite:///{db_file}", "auto_create": True},
        sessions={"backend": "memory", "cookie_secure": False},
        email={"backend": "console"},
        jobs={"runner": "inline"},
        celery={"broker_url": None},
    )
    with pytest.raises(SecurityCheckFailed) as failure:
        await start_runtime(settings, run_jobs=False)
    expected = {
        "secret_key.short",
        "secret_key.predictable",
        "debug",
        "database.sqlite",
        "database.auto_create",
        "sessions.memory_store",
        "sessions.cookie_insecure",
        "email.backend",
    }
    assert rules_of(failure.value.errors) == expected
    message = str(failure.value)
    assert all(f"[{rule}]" in message for rule in expected)
    assert weak_secret not in message
    # Nothing was built: the SQLite file (created on first connect) does not exist.
    assert not db_file.exists()


async def test_the_same_configuration_starts_outside_production(tmp_path: Path) -> None:
    # The control for the test above: without the check, this start creates the file.
    db_file = tmp_path / "p.db"
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        env="development",
        secret_key="dev-secret",
        database={"url": f"sqlite+aiosqlite:///{db_file}", "auto_create": True},
        email={"backend": "memory"},
    )
    runtime = await start_runtime(settings, run_jobs=False)
    await runtime.aclose()
    assert db_file.exists()


class _ReachedBuilding(Exception):
    """Raised by the first provider start_runtime asks for: the check let it through."""


def _raise_reached() -> None:
    raise _ReachedBuilding


async def test_a_good_production_configuration_gets_past_the_check_and_logs_warnings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = production(http={"docs_enabled": True})
    container = build_container(settings)
    # No Postgres or Redis here: stop at the first provider, which runs after the check.
    container.clock.override(providers.Callable(_raise_reached))
    with pytest.raises(_ReachedBuilding):
        await start_runtime(settings, container, run_jobs=False)
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    warnings = [e for e in logged if e.get("event") == "security_check_warning"]
    assert [(w["rule"], w["setting"]) for w in warnings] == [
        ("http.docs_enabled", "PORTICO_HTTP__DOCS_ENABLED")
    ]
    assert not any(e.get("event") == "security_check_error" for e in logged)
