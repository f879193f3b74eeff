"""Bootstrap wires the cached user read into the services that authenticate requests, and
the invalidating unit of work into every service."""

from __future__ import annotations

import pytest

from adapters.memory.identity import InMemoryUnitOfWorkFactory
from core.identity.user_cache import CachedUsers, InvalidatingUnitOfWorkFactory
from entrypoints.bootstrap.container import PER_PROCESS_USER_TTL_SECONDS, _user_cache_ttl
from entrypoints.bootstrap.runtime import start_runtime
from entrypoints.bootstrap.settings import Settings

CHEAP_HASHING = {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "allow_weak_hashing": True}


def _settings(**overrides: object) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None, secret_key="k" * 48, passwords=CHEAP_HASHING, **overrides
    )


async def test_services_share_one_cached_lookup_and_one_invalidating_unit_of_work() -> None:
    runtime = await start_runtime(_settings(database={"backend": "memory"}))
    try:
        lookup = runtime.auth._users
        assert isinstance(lookup, CachedUsers)
        assert runtime.api_tokens._users is lookup
        for service in (
            runtime.accounts,
            runtime.auth,
            runtime.api_tokens,
            runtime.email_verification,
            runtime.password_reset,
        ):
            factory = service._uow
            assert isinstance(factory, InvalidatingUnitOfWorkFactory)
            assert factory._users is lookup
            assert isinstance(factory.inner, InMemoryUnitOfWorkFactory)
        # The lookup and the runtime share the configured cache.
        assert lookup._cache is runtime.cache
    finally:
        await runtime.aclose()


@pytest.mark.parametrize(
    ("backend", "configured", "expected"),
    [
        ("memory", 30, PER_PROCESS_USER_TTL_SECONDS),
        ("memory", 1, 1),
        ("redis", 30, 30),
        ("memcached", 120, 120),
    ],
)
def test_the_user_ttl_comes_from_settings_and_is_short_for_a_per_process_cache(
    backend: str, configured: int, expected: int
) -> None:
    settings = _settings(cache={"backend": backend, "user_ttl_seconds": configured})
    assert settings.cache.user_ttl_seconds == configured
    assert _user_cache_ttl(settings) == expected


def test_the_default_user_ttl_is_thirty_seconds() -> None:
    assert _settings().cache.user_ttl_seconds == 30
