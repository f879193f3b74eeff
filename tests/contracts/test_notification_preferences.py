"""The `NotificationPreferencesRepository` contract, through the unit of work, on every
backend: in memory, SQLite (a file per test) and Postgres."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.memory.unit_of_work import InMemoryUnitOfWorkFactory
from adapters.sqlalchemy.engine import create_engine
from adapters.sqlalchemy.schema import metadata
from adapters.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWorkFactory
from core.identity.errors import UserNotFoundError
from core.identity.model import Email, User, Username
from core.notifications.model import NotificationPreferences
from tests.databases import create_tables, sqlite_url

BACKENDS = [
    "memory",
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.integration),
]

# Both adapters' factories serve identity and notifications from one transaction.
Factory = InMemoryUnitOfWorkFactory | SqlAlchemyUnitOfWorkFactory


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    # Sync on purpose: the Postgres fixture runs its own event loop.
    if request.param == "memory":
        return None
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "var" / "portico.db")
    return str(request.getfixturevalue("postgres_database"))


@pytest.fixture
async def uow(database_url: str | None) -> AsyncIterator[Factory]:
    if database_url is None:
        yield InMemoryUnitOfWorkFactory()
        return
    engine = create_engine(database_url, pool_size=5)
    try:
        await create_tables(engine, metadata)
        yield SqlAlchemyUnitOfWorkFactory(engine)
    finally:
        await engine.dispose()


async def add_user(uow: Factory, n: int = 1) -> int:
    async with uow() as tx:
        user = await tx.users.add(
            User(
                email=Email(f"user{n}@example.com"),
                username=Username(f"user{n}"),
                password_hash="x",
            )
        )
        await tx.commit()
    assert user.id is not None
    return user.id


async def stored(uow: Factory, user_id: int) -> NotificationPreferences:
    async with uow(read_only=True) as tx:
        return await tx.notification_preferences.get(user_id)


async def save(uow: Factory, user_id: int, **flags: Any) -> NotificationPreferences:
    async with uow() as tx:
        saved = await tx.notification_preferences.save(
            NotificationPreferences(user_id).with_flags(**flags)
        )
        await tx.commit()
    return saved


async def test_a_user_without_stored_preferences_gets_the_defaults(uow: Factory) -> None:
    user_id = await add_user(uow)
    defaults = await stored(uow, user_id)
    assert defaults == NotificationPreferences(user_id)
    assert (defaults.onboarding, defaults.product_updates, defaults.usage_alerts) == (
        True,
        True,
        True,
    )
    assert defaults.marketing is False
    # Reading never fails, even for an id with no account behind it.
    assert await stored(uow, 999_999) == NotificationPreferences(999_999)


async def test_save_returns_and_stores_every_flag(uow: Factory) -> None:
    user_id = await add_user(uow)
    wanted = NotificationPreferences(
        user_id, onboarding=False, product_updates=True, usage_alerts=False, marketing=True
    )
    async with uow() as tx:
        assert await tx.notification_preferences.save(wanted) == wanted
        await tx.commit()
    assert await stored(uow, user_id) == wanted


async def test_saving_again_replaces_the_previous_preferences(uow: Factory) -> None:
    user_id = await add_user(uow)
    await save(uow, user_id, marketing=True, onboarding=False)
    again = await save(uow, user_id, marketing=False, usage_alerts=False)
    assert again == NotificationPreferences(user_id, usage_alerts=False)
    assert await stored(uow, user_id) == again


async def test_nothing_is_stored_without_commit_and_the_transaction_sees_its_own_save(
    uow: Factory,
) -> None:
    user_id = await add_user(uow)
    changed = NotificationPreferences(user_id, marketing=True)
    async with uow() as tx:
        await tx.notification_preferences.save(changed)
        assert await tx.notification_preferences.get(user_id) == changed
    assert await stored(uow, user_id) == NotificationPreferences(user_id)

    async with uow() as tx:
        await tx.notification_preferences.save(changed)
        await tx.rollback()
    assert await stored(uow, user_id) == NotificationPreferences(user_id)


async def test_preferences_are_per_user(uow: Factory) -> None:
    first, second = await add_user(uow, 1), await add_user(uow, 2)
    await save(uow, first, marketing=True)
    assert (await stored(uow, first)).marketing is True
    assert await stored(uow, second) == NotificationPreferences(second)


async def test_saving_for_an_unknown_user_is_refused(uow: Factory) -> None:
    with pytest.raises(UserNotFoundError):
        async with uow() as tx:
            await tx.notification_preferences.save(NotificationPreferences(424242))
    assert await stored(uow, 424242) == NotificationPreferences(424242)


async def test_preferences_saved_with_a_new_user_in_one_transaction(uow: Factory) -> None:
    async with uow() as tx:
        user = await tx.users.add(
            User(email=Email("new@example.com"), username=Username("new"), password_hash="x")
        )
        assert user.id is not None
        await tx.notification_preferences.save(NotificationPreferences(user.id, marketing=True))
        await tx.commit()
    assert (await stored(uow, user.id)).marketing is True


async def test_concurrent_first_saves_never_conflict_and_one_wins(uow: Factory) -> None:
    user_id = await add_user(uow)
    variants = [
        NotificationPreferences(user_id, marketing=True),
        NotificationPreferences(user_id, onboarding=False),
        NotificationPreferences(user_id, usage_alerts=False),
        NotificationPreferences(user_id, product_updates=False),
    ]

    async def write(preferences: NotificationPreferences) -> None:
        async with uow() as tx:
            await tx.notification_preferences.save(preferences)
            await tx.commit()

    await asyncio.gather(*(write(variant) for variant in variants))
    assert await stored(uow, user_id) in variants
