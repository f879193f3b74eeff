"""The environment Portico is started with under the bench."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.portico_server import PorticoSetup, absolute_pythonpath, portico_env
from entrypoints.bootstrap.settings import Settings

SETUP = PorticoSetup(
    "postgresql+asyncpg://postgres@127.0.0.1:5432/portico_bench_ab",
    "redis://127.0.0.1:6379",
    "bench:ab:",
)


def _settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in env.items():
        if name.startswith("PORTICO_"):
            monkeypatch.setenv(name, value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_the_services_profile_with_limits_that_never_refuse_the_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _settings(portico_env({}, SETUP), monkeypatch)
    assert settings.database.url == SETUP.database_url
    assert settings.redis.url == SETUP.redis_url
    assert (settings.sessions.backend, settings.cache.backend) == ("redis", "redis")
    assert settings.rate_limit.backend == "redis"
    limits = settings.rate_limit
    assert limits.window_seconds == 1
    assert limits.anonymous == limits.authenticated == 10_000
    assert limits.login_per_account == limits.login_per_address == 10_000
    assert limits.login_window_seconds == 1
    assert not settings.secret_key_generated


def test_every_redis_key_prefix_is_under_the_bench_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(portico_env({}, SETUP), monkeypatch)
    for prefix in (
        settings.sessions.key_prefix,
        settings.cache.key_prefix,
        settings.rate_limit.key_prefix,
        settings.celery.redis_key_prefix,
    ):
        assert prefix.startswith("bench:ab:")


def test_inherited_portico_settings_are_dropped_and_the_rest_kept() -> None:
    env = portico_env({"PORTICO_DEBUG": "true", "PATH": "/usr/bin"}, SETUP)
    assert "PORTICO_DEBUG" not in env
    assert env["PATH"] == "/usr/bin"


def test_relative_pythonpath_entries_become_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = absolute_pythonpath({"PYTHONPATH": "src"}, Path("/repo"))
    assert env["PYTHONPATH"].split(":") == ["/repo", str(tmp_path / "src")]
