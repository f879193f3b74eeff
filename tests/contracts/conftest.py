"""Fixtures of the contract suites.

`identity_uow`: an identity unit-of-work factory on every backend (memory, SQLite file,
Postgres), for the suites of the repositories that live on it (audit log, one-time
tokens). Suites that predate it define their own `backend`/`uow` fixtures.
`billing_uow`: the same factory (one database) seen as billing's, so a billing suite
creates the users its rows point at through `identity_uow`; `payments_uow` and
`conversations_uow` likewise.
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
from core.conversations.ports import ConversationsUnitOfWorkFactory
from core.identity.ports import IdentityUnitOfWorkFactory
from core.payments.ports import PaymentsUnitOfWorkFactory
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


UnitOfWorkFactory = InMemoryUnitOfWorkFactory | SqlAlchemyUnitOfWorkFactory


@pytest.fixture
def identity_uow(unit_of_work_factory: UnitOfWorkFactory) -> IdentityUnitOfWorkFactory:
    return unit_of_work_factory


@pytest.fixture
def billing_uow(unit_of_work_factory: UnitOfWorkFactory) -> BillingUnitOfWorkFactory:
    return unit_of_work_factory


@pytest.fixture
def payments_uow(unit_of_work_factory: UnitOfWorkFactory) -> PaymentsUnitOfWorkFactory:
    return unit_of_work_factory


@pytest.fixture
def conversations_uow(unit_of_work_factory: UnitOfWorkFactory) -> ConversationsUnitOfWorkFactory:
    return unit_of_work_factory


@pytest.fixture
async def unit_of_work_factory(
    identity_backend: tuple[str, str | None],
) -> AsyncIterator[UnitOfWorkFactory]:
    """The backend's unit-of-work factory, serving every context's view of one database."""
    _, url = identity_backend
    if url is None:
        yield InMemoryUnitOfWorkFactory()
        return
    # Generous waits: the concurrency cases start hundreds of units at once on a small
    # shared machine; they queue for a connection (and on SQLite for the write lock).
    engine = create_engine(url, pool_size=12, pool_timeout=60, connect_timeout=60)
    try:
        await create_tables(engine, metadata)
        yield SqlAlchemyUnitOfWorkFactory(engine)
    finally:
        await engine.dispose()
