"""Concurrent writers on the embedded SQLite database lose nothing and break no rule.

The engine opens every transaction with BEGIN IMMEDIATE, so a read-modify-write cannot
interleave with another; the unique constraints decide registration races.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from adapters.sqlalchemy.engine import create_engine
from adapters.sqlalchemy.records import Base
from adapters.sqlalchemy.repository import SqlAlchemyRepository
from adapters.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWorkFactory
from core.identity.errors import EmailTakenError
from core.identity.model import Email, User, Username
from tests.databases import create_tables, sqlite_url

WRITERS = 8


class CounterBase(DeclarativeBase):
    metadata = MetaData()


class CounterRecord(CounterBase):
    __tablename__ = "test_counters"

    id: Mapped[int] = mapped_column(primary_key=True)
    value: Mapped[int] = mapped_column(default=0)


async def increment_concurrently(engine: AsyncEngine, *, all_read_first: bool = False) -> int:
    """`WRITERS` tasks each read the counter, then write it back plus one.

    `all_read_first` holds every writer until all have read (the worst interleaving);
    under BEGIN IMMEDIATE it would stall until the busy timeout (a reader holds the lock).
    """
    await create_tables(engine, CounterBase.metadata)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    async with sessions() as session:
        await SqlAlchemyRepository(session, CounterRecord).add(CounterRecord(id=1, value=0))
        await session.commit()

    everyone_has_read = asyncio.Barrier(WRITERS)

    async def increment() -> None:
        async with sessions() as session:
            counters = SqlAlchemyRepository(session, CounterRecord)
            counter = await counters.get(1)
            assert counter is not None
            seen = counter.value
            if all_read_first:
                await everyone_has_read.wait()
            else:
                await asyncio.sleep(0)  # give the other writers a chance to interleave
            await counters.update(1, {"value": seen + 1})
            await session.commit()

    await asyncio.gather(*(increment() for _ in range(WRITERS)))
    async with sessions() as session:
        final = await SqlAlchemyRepository(session, CounterRecord).get(1)
    assert final is not None
    return final.value


async def test_concurrent_read_modify_write_loses_no_update(tmp_path: Path) -> None:
    engine = create_engine(sqlite_url(tmp_path / "counter.db"))
    try:
        assert await increment_concurrently(engine) == WRITERS
    finally:
        await engine.dispose()


async def test_without_begin_immediate_updates_are_lost(tmp_path: Path) -> None:
    """The control: a stock aiosqlite engine loses updates, so the test above has teeth."""
    engine = create_async_engine(sqlite_url(tmp_path / "stock.db"))
    try:
        assert await increment_concurrently(engine, all_read_first=True) == 1
    finally:
        await engine.dispose()


@pytest.fixture
async def users(tmp_path: Path) -> AsyncIterator[SqlAlchemyUnitOfWorkFactory]:
    engine = create_engine(sqlite_url(tmp_path / "users.db"))
    try:
        await create_tables(engine, Base.metadata)
        yield SqlAlchemyUnitOfWorkFactory(engine)
    finally:
        await engine.dispose()


async def test_two_concurrent_registrations_of_one_email_exactly_one_wins(
    users: SqlAlchemyUnitOfWorkFactory,
) -> None:
    async def register(username: str) -> User:
        # Check-then-insert, as the account service does; only the constraint is final.
        async with users() as uow:
            if await uow.users.get_by_email(Email("race@example.com")) is not None:
                raise EmailTakenError()
            await asyncio.sleep(0)
            user = await uow.users.add(
                User(
                    email=Email("Race@Example.com"), username=Username(username), password_hash="h"
                )
            )
            await asyncio.sleep(0)
            await uow.commit()
            return user

    results = await asyncio.gather(register("first"), register("second"), return_exceptions=True)
    winners = [r for r in results if isinstance(r, User)]
    assert len(winners) == 1
    assert sum(isinstance(r, EmailTakenError) for r in results) == 1
    async with users() as uow:
        stored = await uow.users.get_by_email(Email("race@example.com"))
    assert stored == winners[0]


async def test_the_database_directory_is_created_and_wal_is_on(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "var" / "portico.db"
    engine = create_engine(sqlite_url(path))
    try:
        async with engine.connect() as connection:
            journal = (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar()
            foreign_keys = (await connection.exec_driver_sql("PRAGMA foreign_keys")).scalar()
        assert (journal, foreign_keys) == ("wal", 1)
        assert path.exists()
    finally:
        await engine.dispose()


async def test_read_only_units_do_not_wait_for_the_writer(
    users: SqlAlchemyUnitOfWorkFactory,
) -> None:
    async with users() as uow:
        await uow.users.add(
            User(email=Email("a@example.com"), username=Username("ada"), password_hash="h")
        )
        await uow.commit()
    async with users() as writer:  # holds SQLite's single write lock until it exits
        stored = await writer.users.get_by_email(Email("a@example.com"))
        assert stored is not None
        await writer.users.update(stored.copy(username=Username("changed")))
        # A read-only unit reads the last committed snapshot at once; a writing unit
        # would queue behind the lock until the busy timeout.
        async with asyncio.timeout(1), users(read_only=True) as reader:
            seen = await reader.users.get_by_email(Email("a@example.com"))
        assert seen is not None and seen.username == Username("ada")
        await writer.commit()
    async with users(read_only=True) as reader:
        after = await reader.users.get_by_email(Email("a@example.com"))
    assert after is not None and after.username == Username("changed")
