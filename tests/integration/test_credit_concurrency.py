"""Concurrent spends through the service, each in its own unit of work, on the real
databases: never an overdraft, the balance always the sum of its ledger."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.billing.catalog import CatalogService
from core.billing.credits import CreditService
from core.billing.entitlements import EntitlementService
from core.billing.errors import InsufficientCreditsError, LimitReachedError
from core.billing.ports import BillingUnitOfWorkFactory
from core.billing.seed import seed_catalog
from core.identity.service import AccountService
from entrypoints.bootstrap.runtime import Runtime, start_runtime
from entrypoints.bootstrap.settings import Settings

pytestmark = pytest.mark.integration

CHEAP_HASHING = {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "allow_weak_hashing": True}


async def _runtime(url: str) -> Runtime:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        env="test",
        secret_key="k" * 48,
        passwords=CHEAP_HASHING,
        email={"backend": "memory"},
        database={"url": url, "auto_create": True, "pool_size": 20, "max_overflow": 30},
    )
    return await start_runtime(settings, run_jobs=False)


@pytest.fixture
async def postgres(postgres_database: str) -> AsyncIterator[Runtime]:
    runtime = await _runtime(postgres_database)
    try:
        yield runtime
    finally:
        await runtime.aclose()


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[Runtime]:
    runtime = await _runtime(f"sqlite+aiosqlite:///{tmp_path / 'credits.db'}")
    try:
        yield runtime
    finally:
        await runtime.aclose()


async def _user(runtime: Runtime) -> int:
    name = f"u{uuid.uuid4().hex[:10]}"
    user = await runtime.get(AccountService).register(
        f"{name}@example.com", name, "correct horse battery"
    )
    assert user.id is not None
    return user.id


async def _race(runtime: Runtime, balance: int, spenders: int) -> None:
    credits = runtime.get(CreditService)
    user_id = await _user(runtime)
    await credits.grant(user_id, balance, idempotency_key="fund")

    async def spend(n: int) -> bool:
        try:
            await credits.spend(user_id, 1, idempotency_key=f"spend-{n}")
        except InsufficientCreditsError:
            return False
        return True

    outcomes = await asyncio.gather(*(spend(n) for n in range(spenders)))
    assert sum(outcomes) == balance
    assert await credits.balance(user_id) == 0
    async with runtime.get(BillingUnitOfWorkFactory)(read_only=True) as tx:
        assert await tx.credits.total(user_id) == 0


async def test_200_concurrent_spends_of_a_100_balance_on_postgres(postgres: Runtime) -> None:
    for _ in range(10):
        await _race(postgres, balance=100, spenders=200)


async def test_50_concurrent_spends_on_sqlite(sqlite: Runtime) -> None:
    await _race(sqlite, balance=25, spenders=50)


async def test_100_concurrent_consumes_of_a_50_a_day_limit_on_postgres(
    postgres: Runtime,
) -> None:
    await seed_catalog(postgres.get(CatalogService))
    user = await postgres.get(AccountService).get(await _user(postgres))
    entitlements = postgres.get(EntitlementService)

    async def one() -> bool:
        try:
            await entitlements.consume(user, "messages")
        except LimitReachedError:
            return False
        return True

    outcomes = await asyncio.gather(*(one() for _ in range(100)))
    assert sum(outcomes) == 50
