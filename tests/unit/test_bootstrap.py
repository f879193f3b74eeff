"""The composition root: adapter choice by settings, overrides, lifecycles."""

from __future__ import annotations

from pathlib import Path

import pytest
from dependency_injector import providers

from adapters.memory.clock import ManualClock
from adapters.memory.sessions import InMemorySessionStore
from adapters.memory.unit_of_work import InMemoryUnitOfWorkFactory
from adapters.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWorkFactory
from core.identity.model import Email
from core.identity.service import AccountService, AuthenticationService
from core.platform.cache import Cache
from core.platform.rate_limit import RateLimiter
from core.shared.clock import Clock
from entrypoints.bootstrap.container import build_container
from entrypoints.bootstrap.runtime import start_runtime
from entrypoints.bootstrap.settings import Settings

CHEAP_HASHING = {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "allow_weak_hashing": True}


def _settings(**overrides: object) -> Settings:
    return Settings(secret_key="k" * 48, passwords=CHEAP_HASHING, **overrides)  # type: ignore[arg-type]


async def test_memory_profile_selects_memory_adapters_and_probes_only_sessions() -> None:
    runtime = await start_runtime(_settings(database={"backend": "memory"}))
    try:
        assert isinstance(runtime.get(AccountService)._uow.inner, InMemoryUnitOfWorkFactory)
        assert isinstance(runtime.get(AuthenticationService)._sessions, InMemorySessionStore)
        assert await runtime.readiness() == {"sessions": "ok"}
    finally:
        await runtime.aclose()


async def test_sql_profile_creates_tables_and_probes_the_database(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'p.db'}"
    runtime = await start_runtime(_settings(database={"url": url, "auto_create": True}))
    try:
        assert isinstance(runtime.get(AccountService)._uow.inner, SqlAlchemyUnitOfWorkFactory)
        user = await runtime.get(AccountService).register(
            "ada@example.com", "ada", "correct horse battery"
        )
        assert (await runtime.get(AccountService).get(user.id or 0)).email == Email(
            "ada@example.com"
        )
        assert await runtime.readiness() == {"database": "ok", "sessions": "ok"}
    finally:
        await runtime.aclose()
    assert (tmp_path / "p.db").exists()


async def test_services_are_built_once_and_shared() -> None:
    runtime = await start_runtime(_settings(database={"backend": "memory"}))
    try:
        # the same port instances feed both services: one store, one unit-of-work factory
        assert runtime.get(AccountService)._sessions is runtime.get(AuthenticationService)._sessions
        assert runtime.get(AccountService)._uow is runtime.get(AuthenticationService)._uow
    finally:
        await runtime.aclose()


async def test_a_test_can_override_a_provider_on_its_own_container() -> None:
    settings = _settings(database={"backend": "memory"})
    clock = ManualClock()
    container = build_container(settings)
    container.clock.override(providers.Object(clock))
    runtime = await start_runtime(settings, container)
    try:
        assert runtime.get(Clock) is clock
        await runtime.get(AccountService).register(
            "ada@example.com", "ada", "correct horse battery"
        )
        login = await runtime.get(AuthenticationService).login(
            "ada@example.com", "correct horse battery"
        )
        clock.advance(settings.sessions.absolute_lifetime_seconds + 1)
        assert await runtime.get(AuthenticationService).authenticate(login.token) is None
    finally:
        await runtime.aclose()
    # a second container is untouched by the first one's override
    other = build_container(settings)
    assert other.clock() is not clock


async def test_redis_backend_without_a_url_fails_at_startup_not_per_request() -> None:
    with pytest.raises(ValueError, match="PORTICO_REDIS__URL"):
        await start_runtime(
            _settings(sessions={"backend": "redis"}, database={"backend": "memory"})
        )


async def test_cache_and_rate_limiter_default_to_memory_without_probes() -> None:
    runtime = await start_runtime(_settings(database={"backend": "memory"}))
    try:
        await runtime.get(Cache).set("k", {"v": [1, 2]}, 60)
        assert await runtime.get(Cache).get("k") == {"v": [1, 2]}
        decisions = [await runtime.get(RateLimiter).hit("client", 2, 60) for _ in range(3)]
        assert [d.allowed for d in decisions] == [True, True, False]
        assert set(await runtime.readiness()) == {"sessions"}
    finally:
        await runtime.aclose()
