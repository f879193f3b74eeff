"""Fixtures of the contract suites.

`identity_uow`: an identity unit-of-work factory on every backend (memory, SQLite file,
Postgres), for the suites of the repositories that live on it (audit log, one-time
tokens). `billing_uow`: the same for billing's repositories (both adapters' units serve
every context, so its units reach `users` too). Suites that predate them define their
own `backend`/`uow` fixtures.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.memory.unit_of_work import InMemoryUnitOfWorkFactory
from adapters.sqlalchemy.engine import create_engine
from adapters.sqlalchemy.schema import metadata
from adapters.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWorkFactory
from core.billing.ports import BillingUnitOfWorkFactory
from core.identity.ports import IdentityUnitOfWorkFactory
from tests.databases import create_tables, sqlite_url

BACKENDS = [
    "memory",
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.integration),
]


@pytest.fixture(params=BACKENDS)
def identity_backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str | None]:
    # Sync on purpose: the Postgres fixture runs its own event loop.
    if request.param == "memory":
        return "memory", None
    if request.param == "sqlite":
        return "sqlite", sqlite_url(tmp_path / "var" / "portico.db")
    return "postgres", request.getfixturevalue("postgres_database")


@pytest.fixture
async def identity_uow(
    identity_backend: tuple[str, str | None],
) -> AsyncIterator[IdentityUnitOfWorkFactory]:
    _, url = identity_backend
    if url is None:
        yield InMemoryUnitOfWorkFactory()
        return
    engine = create_engine(url, pool_size=12)
    try:
        await create_tables(engine, metadata)
        yield SqlAlchemyUnitOfWorkFactory(engine)
    finally:
        await engine.dispose()


@pytest.fixture
async def billing_uow(
    identity_backend: tuple[str, str | None],
) -> AsyncIterator[BillingUnitOfWorkFactory]:
    _, url = identity_backend
    if url is None:
        yield InMemoryUnitOfWorkFactory()
        return
    engine = create_engine(url, pool_size=12)
    try:
        await create_tables(engine, metadata)
        yield SqlAlchemyUnitOfWorkFactory(engine)
    finally:
        await engine.dispose()
