"""The generic SQL repository base, on SQLite and Postgres.

Uses test-only tables on their own metadata, so nothing here leaks into migrations.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Float, ForeignKey, MetaData, String, UniqueConstraint, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from adapters.sqlalchemy.engine import create_engine, ping, session_factory
from adapters.sqlalchemy.errors import database_errors
from adapters.sqlalchemy.records import NAMING_CONVENTION, SoftDeleteMixin, TimestampMixin
from adapters.sqlalchemy.repository import JoinSpec, SqlAlchemyRepository
from adapters.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWorkFactory
from core.shared.errors import ConflictError, NotFoundError, UnavailableError
from core.shared.query import (
    Condition,
    InvalidQueryError,
    ListQuery,
    Operator,
    PageRequest,
    encode_cursor,
    parse_sort,
)
from tests.contracts.query_cases import (
    BAD_QUERIES,
    BASE_TIME,
    CURSOR_SORTS,
    GADGETS,
    OPERATOR_CASES,
    SORT_CASES,
    q,
)
from tests.databases import create_tables, sqlite_url


class ScratchBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class MakerRecord(SoftDeleteMixin, ScratchBase):
    __tablename__ = "test_makers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))


class GadgetRecord(TimestampMixin, SoftDeleteMixin, ScratchBase):
    __tablename__ = "test_gadgets"
    __table_args__ = (UniqueConstraint("name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    category: Mapped[str | None] = mapped_column(String(20))
    price: Mapped[int] = mapped_column()
    rating: Mapped[float] = mapped_column(Float)
    in_stock: Mapped[bool] = mapped_column(default=True)
    maker_id: Mapped[int | None] = mapped_column(ForeignKey("test_makers.id"))


class NameTakenError(ConflictError):
    code = "name_taken"


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.integration)]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "generic.db")
    return str(request.getfixturevalue("postgres_database"))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=3)
    try:
        await create_tables(engine, ScratchBase.metadata)
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with session_factory(engine)() as session:
        yield session
        await session.rollback()


def gadgets(session: AsyncSession) -> SqlAlchemyRepository[GadgetRecord]:
    return SqlAlchemyRepository(
        session, GadgetRecord, constraint_errors={"uq_test_gadgets_name": NameTakenError}
    )


@pytest.fixture
async def seeded(session: AsyncSession) -> SqlAlchemyRepository[GadgetRecord]:
    makers = SqlAlchemyRepository(session, MakerRecord)
    await makers.bulk_insert([{"id": 1, "name": "Acme"}, {"id": 2, "name": "Bosch"}])
    repo = gadgets(session)
    ids = await repo.bulk_insert(
        [
            {
                "name": name,
                "category": category,
                "price": price,
                "rating": rating,
                "in_stock": in_stock,
                "maker_id": maker_id,
                "created_at": BASE_TIME + timedelta(minutes=minutes),
            }
            for name, category, price, rating, in_stock, maker_id, minutes in GADGETS
        ]
    )
    assert ids == list(range(1, len(GADGETS) + 1))
    return repo


async def names(repo: SqlAlchemyRepository[GadgetRecord], query: ListQuery) -> list[str]:
    return [record.name for record in (await repo.list(query)).items]


@pytest.mark.parametrize(("filters", "expected"), OPERATOR_CASES)
async def test_every_operator(
    seeded: SqlAlchemyRepository[GadgetRecord], filters: dict[str, Any], expected: list[str]
) -> None:
    assert await names(seeded, q(filters)) == expected
    assert await seeded.count(**filters) == len(expected)
    assert await seeded.exists(**filters) is bool(expected)


async def test_conditions_and_filters_combine(seeded: SqlAlchemyRepository[GadgetRecord]) -> None:
    cheap = Condition("price", Operator.LTE, 10)
    assert await seeded.count(cheap) == 4
    assert await seeded.count(cheap, in_stock=True) == 2
    assert await seeded.exists(cheap, name__like="Z%") is False
    found = await seeded.find_one(cheap, category="parts")
    assert found is not None and found.name == "Flange"


@pytest.mark.parametrize(("sort", "expected"), SORT_CASES)
async def test_multi_column_sort_with_mixed_directions_and_nulls_last(
    seeded: SqlAlchemyRepository[GadgetRecord], sort: str, expected: list[str]
) -> None:
    assert await names(seeded, q(sort=sort)) == expected


async def test_offset_pagination(seeded: SqlAlchemyRepository[GadgetRecord]) -> None:
    first = await seeded.list(q(sort="-created_at", limit=3, offset=0))
    middle = await seeded.list(q(sort="-created_at", limit=3, offset=3))
    last = await seeded.list(q(sort="-created_at", limit=3, offset=6))
    beyond = await seeded.list(q(sort="-created_at", limit=3, offset=8))
    assert [r.name for r in first.items] == ["Gear", "Flange", "Epoxy 100%"]
    assert [r.name for r in middle.items] == ["Drill_X", "Crank", "Bolt"]
    assert [r.name for r in last.items] == ["anvil-mini", "Anvil"]
    assert last.next_cursor is None and beyond.items == []
    # An offset page's cursor continues from its last row.
    assert middle.next_cursor is not None
    after = await seeded.list(q(sort="-created_at", limit=5, cursor=middle.next_cursor))
    assert [r.name for r in after.items] == ["anvil-mini", "Anvil"]


async def walk(fetch: Callable[[str | None], Any], limit: int) -> tuple[list[Any], int]:
    items: list[Any] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await fetch(cursor)
        assert len(page.items) <= limit
        items.extend(page.items)
        pages += 1
        if page.next_cursor is None:
            return items, pages
        cursor = page.next_cursor
        assert pages < 50, "pagination does not terminate"


@pytest.mark.parametrize("sort", CURSOR_SORTS)
@pytest.mark.parametrize("limit", [1, 3])
async def test_cursor_pagination_walks_all_rows_without_gaps_or_repeats(
    seeded: SqlAlchemyRepository[GadgetRecord], sort: str, limit: int
) -> None:
    expected = await names(seeded, q(sort=sort, limit=100))

    async def fetch(cursor: str | None) -> Any:
        return await seeded.list(q({"name__ne": "Nope"}, sort=sort, limit=limit, cursor=cursor))

    items, pages = await walk(fetch, limit)
    assert [r.name for r in items] == expected
    assert len(set(expected)) == len(GADGETS)
    assert pages == -(-len(GADGETS) // limit)


async def test_cursor_pagination_sees_rows_changed_between_pages_consistently(
    seeded: SqlAlchemyRepository[GadgetRecord],
) -> None:
    first = await seeded.list(q(sort="price", limit=3))
    assert [r.name for r in first.items] == ["Epoxy 100%", "anvil-mini", "Bolt"]
    # A new row that sorts before the cursor is not repeated; one after it shows up.
    await seeded.bulk_insert(
        [
            {"name": "Awl", "price": 1, "rating": 1.0},
            {"name": "Zip", "price": 99, "rating": 1.0},
        ]
    )
    rest = await seeded.list(q(sort="price", limit=100, cursor=first.next_cursor))
    assert [r.name for r in rest.items] == ["Flange", "Crank", "Gear", "Anvil", "Drill_X", "Zip"]


async def test_soft_deleted_rows_are_hidden_unless_included(
    seeded: SqlAlchemyRepository[GadgetRecord],
) -> None:
    at = datetime(2026, 2, 1, tzinfo=UTC)
    assert await seeded.soft_delete(3, at) is True
    assert await seeded.soft_delete(3, at + timedelta(days=1)) is True  # keeps the first time
    assert await seeded.soft_delete(999) is False
    assert await seeded.get(3) is None
    deleted = await seeded.get(3, include_deleted=True)
    assert deleted is not None and deleted.deleted_at == at
    assert "Bolt" not in await names(seeded, q())
    everything = ListQuery(sort=parse_sort("id"), include_deleted=True)
    assert "Bolt" in await names(seeded, everything)
    assert await seeded.count() == len(GADGETS) - 1
    assert await seeded.count(include_deleted=True) == len(GADGETS)
    assert await seeded.exists(name="Bolt") is False
    assert await seeded.exists(name="Bolt", include_deleted=True) is True
    assert await seeded.update(3, {"price": 1}) is None
    assert await seeded.find_one(name="Bolt") is None


async def test_add_update_and_timestamps(session: AsyncSession) -> None:
    repo = gadgets(session)
    before = datetime.now(UTC)
    record = await repo.add(GadgetRecord(name="Hammer", price=12, rating=3.5))
    assert record.id == 1 and record.in_stock is True and record.deleted_at is None
    assert record.created_at == record.updated_at >= before - timedelta(seconds=1)
    assert record.created_at.tzinfo is not None
    updated = await repo.update(1, {"price": 15, "category": "tools"})
    assert updated is not None and updated.price == 15 and updated.category == "tools"
    assert updated.updated_at > updated.created_at
    assert await repo.update(999, {"price": 1}) is None
    await session.commit()
    reread = await repo.get(1)
    assert reread is not None and (reread.price, reread.category) == (15, "tools")
    assert reread.updated_at == updated.updated_at


async def test_bulk_update_by_primary_key(seeded: SqlAlchemyRepository[GadgetRecord]) -> None:
    before = await seeded.get(1)
    assert before is not None
    old_updated_at = before.updated_at
    await seeded.bulk_update(
        [
            {"id": 1, "price": 31},
            {"id": 2, "price": 11, "in_stock": True},
            {"id": 3, "category": "bolts"},
        ]
    )
    rows = {r.id: r for r in (await seeded.list(q(sort="id", limit=3))).items}
    assert (rows[1].price, rows[2].price, rows[2].in_stock) == (31, 11, True)
    assert (rows[3].category, rows[3].price) == ("bolts", 10)
    assert rows[1].updated_at > old_updated_at
    untouched = await seeded.get(4)
    assert untouched is not None and untouched.price == 20
    with pytest.raises(InvalidQueryError):
        await seeded.bulk_update([{"price": 1}])
    with pytest.raises(NotFoundError):
        await seeded.bulk_update([{"id": 4, "price": 99}, {"id": 999, "price": 1}])
    unchanged = await seeded.get(4)
    assert unchanged is not None and unchanged.price == 20


async def test_explicit_inner_and_outer_joins(seeded: SqlAlchemyRepository[GadgetRecord]) -> None:
    maker = JoinSpec(MakerRecord, GadgetRecord.maker_id == MakerRecord.id, prefix="maker__")
    inner = await seeded.list_joined(q({"maker__name": "Acme"}, sort="-price,name"), [maker])
    assert [(r["name"], r["maker__name"]) for r in inner.items] == [
        ("Anvil", "Acme"),
        ("Flange", "Acme"),
        ("anvil-mini", "Acme"),
    ]
    assert set(inner.items[0]) >= {"id", "name", "price", "maker_id", "maker__name"}
    outer = JoinSpec(
        MakerRecord, GadgetRecord.maker_id == MakerRecord.id, prefix="maker__", outer=True
    )
    rows = await seeded.list_joined(q(sort="maker__name,name", limit=100), [outer])
    assert [(r["name"], r["maker__name"]) for r in rows.items][-3:] == [
        ("Gear", "Bosch"),
        ("Crank", None),
        ("Epoxy 100%", None),
    ]

    async def fetch(cursor: str | None) -> Any:
        return await seeded.list_joined(q(sort="-maker__name", limit=2, cursor=cursor), [outer])

    walked, _ = await walk(fetch, 2)
    everything = await seeded.list_joined(q(sort="-maker__name", limit=100), [outer])
    assert [r["id"] for r in walked] == [r["id"] for r in everything.items]
    assert [r["maker__name"] for r in walked][:2] == [None, None]
    assert len(walked) == len(GADGETS)


async def test_joins_skip_soft_deleted_targets(
    session: AsyncSession, seeded: SqlAlchemyRepository[GadgetRecord]
) -> None:
    await SqlAlchemyRepository(session, MakerRecord).soft_delete(2)
    maker = JoinSpec(MakerRecord, GadgetRecord.maker_id == MakerRecord.id, prefix="maker__")
    inner = await seeded.list_joined(q(limit=100), [maker])
    assert {r["maker__name"] for r in inner.items} == {"Acme"}
    included = await seeded.list_joined(
        ListQuery(page=PageRequest(limit=100), include_deleted=True), [maker]
    )
    assert {r["maker__name"] for r in included.items} == {"Acme", "Bosch"}


SQL_BAD_QUERIES = [
    *BAD_QUERIES,
    q({"price__gt": 2**40}),  # outside the INTEGER column's range
    q(cursor=encode_cursor([1, 2])),
    q(cursor=encode_cursor([10, 3, "-price,id"])),
    q(sort="price", cursor=encode_cursor(["ten", 3, "price,id"])),
]


@pytest.mark.parametrize("query", SQL_BAD_QUERIES)
async def test_bad_queries_raise_invalid_query_error_before_any_sql(
    seeded: SqlAlchemyRepository[GadgetRecord], query: ListQuery
) -> None:
    with pytest.raises(InvalidQueryError):
        await seeded.list(query)
    # No SQL error happened: the transaction is still usable.
    assert await seeded.count() == len(GADGETS)


async def test_unknown_names_in_writes_are_invalid(
    seeded: SqlAlchemyRepository[GadgetRecord],
) -> None:
    with pytest.raises(InvalidQueryError):
        await seeded.bulk_insert([{"name": "X", "price": 1, "rating": 1.0, "colour": "red"}])
    with pytest.raises(InvalidQueryError):
        await seeded.update(1, {"colour": "red"})
    with pytest.raises(InvalidQueryError):
        await seeded.update(1, {"id": 5})
    with pytest.raises(InvalidQueryError):
        await seeded.count(colour="red")
    assert await seeded.get("not-an-id") is None
    assert await seeded.get(2**40) is None


async def test_constraint_violations_become_conflict_errors(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions() as session:
        await gadgets(session).add(GadgetRecord(name="Hammer", price=1, rating=1.0))
        await session.commit()
    async with sessions() as session:
        with pytest.raises(NameTakenError):
            await gadgets(session).add(GadgetRecord(name="Hammer", price=2, rating=1.0))
    async with sessions() as session:
        # Foreign keys are enforced (SQLite needs PRAGMA foreign_keys=ON for that).
        with pytest.raises(ConflictError) as caught:
            await gadgets(session).add(GadgetRecord(name="Saw", price=2, rating=1.0, maker_id=9))
        assert type(caught.value) is ConflictError
    async with sessions() as session:
        assert await gadgets(session).count() == 1


async def test_datetimes_are_utc_aware_in_and_out(session: AsyncSession) -> None:
    repo = gadgets(session)
    moment = datetime(2026, 5, 1, 14, 30, tzinfo=UTC)
    plus_two = moment.astimezone(timezone(timedelta(hours=2)))
    record = await repo.add(GadgetRecord(name="Clock", price=1, rating=1.0))
    await repo.update(record.id, {"deleted_at": plus_two})
    await session.commit()
    reread = await repo.get(record.id, include_deleted=True)
    assert reread is not None and reread.deleted_at == moment
    assert reread.deleted_at.utcoffset() == timedelta(0)
    with pytest.raises(Exception, match="naive"):
        await repo.update(record.id, {"deleted_at": datetime(2026, 5, 1)}, include_deleted=True)


async def test_ping_answers_when_the_database_is_up(engine: AsyncEngine) -> None:
    await ping(engine)


async def test_a_locked_sqlite_database_is_unavailable(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "locked.db")
    holder, impatient = create_engine(url), create_engine(url, connect_timeout=0.2)
    try:
        await create_tables(holder, ScratchBase.metadata)
        # BEGIN IMMEDIATE on the holder keeps the write lock while the other one waits.
        async with holder.begin(), session_factory(impatient)() as session:
            with pytest.raises(UnavailableError) as caught:
                await gadgets(session).count()
            with pytest.raises(UnavailableError):
                await ping(impatient)
        assert caught.value.dependency == "database"
        await ping(impatient)  # the lock is gone
    finally:
        await impatient.dispose()
        await holder.dispose()


@pytest.mark.integration
async def test_an_unreachable_postgres_is_unavailable() -> None:
    engine = create_engine("postgresql://postgres@127.0.0.1:1/nothing", connect_timeout=1)
    try:
        async with session_factory(engine)() as session:
            with pytest.raises(UnavailableError) as caught:
                await gadgets(session).count()
        assert caught.value.dependency == "database"
        with pytest.raises(UnavailableError):
            await ping(engine)
        with pytest.raises(UnavailableError):
            async with SqlAlchemyUnitOfWorkFactory(engine)() as uow:
                await uow.users.get(1)
    finally:
        await engine.dispose()


@pytest.mark.integration
async def test_a_value_postgres_cannot_encode_is_not_an_outage(postgres_database: str) -> None:
    engine = create_engine(postgres_database)
    try:
        await create_tables(engine, ScratchBase.metadata)
        async with session_factory(engine)() as session:
            with pytest.raises(DBAPIError) as caught:
                await gadgets(session).bulk_insert([{"name": "X", "price": "ten", "rating": 1}])
        assert not isinstance(caught.value, UnavailableError)
    finally:
        await engine.dispose()


@pytest.mark.integration
async def test_postgres_statement_timeout_is_unavailable(postgres_database: str) -> None:
    engine = create_engine(postgres_database, statement_timeout_ms=100)
    try:
        async with session_factory(engine)() as session:
            with pytest.raises(UnavailableError), database_errors():
                await session.execute(text("SELECT pg_sleep(2)"))
    finally:
        await engine.dispose()
