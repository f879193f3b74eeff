"""Bootstrap wires the cached user read into the services that authenticate requests, and
the invalidating unit of work into every service."""

from __future__ import annotations

import pytest

from adapters.memory.unit_of_work import InMemoryUnitOfWorkFactory
from core.identity.ports import IdentityUnitOfWorkFactory
from core.identity.service import (
    AccountService,
    AuthenticationService,
    EmailVerificationService,
    PasswordResetService,
    TokenService,
)
from core.identity.user_cache import CachedUsers, UserCache, UserCachePolicy
from core.identity.user_invalidation import InvalidatingUnitOfWorkFactory
from core.platform.cache import Cache
from entrypoints.bootstrap.policies import PER_PROCESS_USER_TTL_SECONDS, user_cache_policy
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
        lookup = runtime.get(AuthenticationService)._users
        assert isinstance(lookup, CachedUsers)
        assert lookup is runtime.get(CachedUsers)
        assert runtime.get(TokenService)._users is lookup
        user_cache = runtime.get(UserCache)
        factory = runtime.get(IdentityUnitOfWorkFactory)
        assert isinstance(factory, InvalidatingUnitOfWorkFactory)
        assert factory._cache is user_cache and lookup.cache is user_cache
        assert isinstance(factory.inner, InMemoryUnitOfWorkFactory)
        for service in (
            AccountService,
            AuthenticationService,
            TokenService,
            EmailVerificationService,
            PasswordResetService,
        ):
            assert runtime.get(service)._uow is factory, service
        # The lookup and the runtime share the configured cache.
        assert user_cache._cache is runtime.get(Cache)
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
    assert user_cache_policy(settings) == UserCachePolicy(ttl_seconds=expected)
