"""The security check's reports: `portico check-config` and the refused production start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dependency_injector import providers

from entrypoints.bootstrap.container import build_container
from entrypoints.bootstrap.runtime import start_runtime
from entrypoints.bootstrap.security_check import SecurityCheckFailed
from entrypoints.bootstrap.settings import Settings
from entrypoints.cli import main
from tests.unit.security_check.cases import GOOD, GOOD_SECRET, production, rules_of

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
        "PORTICO_PAYMENTS__BACKEND": "stripe",
        "PORTICO_STRIPE__API_KEY": GOOD["stripe"]["api_key"],
        "PORTICO_STRIPE__WEBHOOK_SECRET": GOOD["stripe"]["webhook_secret"],
        "PORTICO_METRICS__TOKEN": GOOD["metrics"]["token"],
        "PORTICO_LLM__BACKEND": "openai",
        "PORTICO_LLM__BASE_URL": GOOD["llm"]["base_url"],
        "PORTICO_LLM__API_KEY": GOOD["llm"]["api_key"],
        "PORTICO_LLM__DEFAULT_MODEL": GOOD["llm"]["default_model"],
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
