"""The `UserRepository` contract, through the unit of work, on every adapter.

One suite, three backends: in memory, SQLite (a file per test) and Postgres.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.memory.unit_of_work import InMemoryUnitOfWorkFactory
from adapters.sqlalchemy.engine import create_engine
from adapters.sqlalchemy.records import Base
from adapters.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWorkFactory
from core.identity.errors import (
    EmailTakenError,
    InvalidEmailError,
    InvalidUsernameError,
    UsernameTakenError,
    UserNotFoundError,
)
from core.identity.model import Email, User, Username
from core.identity.ports import IdentityUnitOfWorkFactory
from core.shared.errors import DomainError
from core.shared.query import (
    InvalidQueryError,
    ListQuery,
    PageRequest,
    parse_filters,
    parse_sort,
)
from tests.databases import create_tables, sqlite_url

BACKENDS = [
    "memory",
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.integration),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str | None]:
    # Sync on purpose: the Postgres fixture runs its own event loop.
    if request.param == "memory":
        return "memory", None
    if request.param == "sqlite":
        return "sqlite", sqlite_url(tmp_path / "var" / "portico.db")
    return "postgres", request.getfixturevalue("postgres_database")


@pytest.fixture
async def uow(backend: tuple[str, str | None]) -> AsyncIterator[IdentityUnitOfWorkFactory]:
    _, url = backend
    if url is None:
        yield InMemoryUnitOfWorkFactory()
        return
    engine = create_engine(url, pool_size=5)
    try:
        await create_tables(engine, Base.metadata)
        yield SqlAlchemyUnitOfWorkFactory(engine)
    finally:
        await engine.dispose()


def new_user(n: int = 1, **changes: object) -> User:
    return User(
        email=Email(f"user{n}@example.com"),
        username=Username(f"user{n}"),
        password_hash=f"$argon2id$hash{n}",
    ).copy(**changes)


async def store(uow: IdentityUnitOfWorkFactory, *users: User) -> list[User]:
    async with uow() as tx:
        stored = [await tx.users.add(user) for user in users]
        await tx.commit()
    return stored


async def test_add_assigns_id_and_timestamps_and_get_returns_the_user(
    uow: IdentityUnitOfWorkFactory,
) -> None:
    before = datetime.now(UTC)
    first, second = await store(uow, new_user(1), new_user(2, tier_code="pro"))
    assert first.id == 1 and second.id is not None and second.id > first.id
    assert first.created_at is not None and first.created_at.tzinfo is not None
    assert first.created_at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= first.created_at <= datetime.now(UTC)
    assert first.updated_at == first.created_at and first.deleted_at is None
    async with uow() as tx:
        loaded = await tx.users.get(second.id)
        assert await tx.users.get(999) is None
    assert loaded == second
    assert loaded.tier_code == "pro" and not loaded.is_superuser and not loaded.email_verified


async def test_lookups_by_email_are_case_insensitive_and_by_username_exact(
    uow: IdentityUnitOfWorkFactory,
) -> None:
    (user,) = await store(
        uow, new_user(1, email=Email("Ada.Lovelace@Example.COM"), username=Username("Ada"))
    )
    assert user.email == Email("ada.lovelace@example.com")
    assert str(user.email) == "ada.lovelace@example.com"
    async with uow() as tx:
        assert await tx.users.get_by_email(Email(" ADA.lovelace@example.com ")) == user
        assert await tx.users.get_by_email(Email("nobody@example.com")) is None
        assert await tx.users.get_by_username(Username("Ada")) == user
        assert await tx.users.get_by_username(Username("ada")) is None


async def test_an_account_registered_with_one_spelling_is_found_with_another(
    uow: IdentityUnitOfWorkFactory,
) -> None:
    # Registered as `Ada@Example.com`, signed in as `ADA@example.com `: one account.
    (user,) = await store(uow, new_user(1, email=Email("Ada@Example.com")))
    async with uow() as tx:
        found = await tx.users.get_by_email(Email("ADA@example.com "))
        other = await tx.users.get_by_email(Email("ada@example.org"))
    assert found == user and found is not None and found.id == user.id
    assert other is None  # control: another address is another account


async def test_the_repository_folds_emails_only_through_email(
    uow: IdentityUnitOfWorkFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Were `Email` to keep case, the repository must follow it: it stores and matches
    # exactly what `Email` made. A repository that folded case on its own (as each did
    # once) would find `ada@...` below and refuse the second registration.
    monkeypatch.setattr(Email, "normalise", staticmethod(lambda text: text.strip()))
    (user,) = await store(uow, new_user(1, email=Email(" Ada@Example.com ")))
    assert str(user.email) == "Ada@Example.com"
    async with uow() as tx:
        assert await tx.users.get_by_email(Email("Ada@Example.com")) == user  # control
        assert await tx.users.get_by_email(Email("ada@example.com")) is None
        assert (await tx.users.get(user.id)) == user
    (second,) = await store(uow, new_user(2, email=Email("ada@example.com")))
    assert second.email != user.email


async def test_stored_emails_and_usernames_load_even_if_invalid_today(
    uow: IdentityUnitOfWorkFactory,
) -> None:
    # Rows accepted earlier (a provider's unusual address, a looser rule) must load.
    with pytest.raises(InvalidEmailError):
        Email("root@localhost")  # control: today's rules refuse this address
    with pytest.raises(InvalidUsernameError):
        Username("x!")
    legacy = new_user(1, email=Email.stored("Root@LocalHost"), username=Username.stored("x!"))
    (user,) = await store(uow, legacy)
    assert str(user.email) == "root@localhost" and str(user.username) == "x!"
    async with uow() as tx:
        assert await tx.users.get(user.id) == user
        assert await tx.users.get_by_email(Email.stored("ROOT@localhost")) == user
        assert await tx.users.get_by_username(Username.stored("x!")) == user
        assert [u.id for u in (await tx.users.list(ListQuery())).items] == [user.id]


async def test_duplicate_email_or_username_is_refused(uow: IdentityUnitOfWorkFactory) -> None:
    await store(uow, new_user(1))
    with pytest.raises(EmailTakenError):
        await store(uow, new_user(2, email=Email("USER1@example.com")))
    with pytest.raises(UsernameTakenError):
        await store(uow, new_user(2, username=Username("user1")))
    async with uow() as tx:
        page = await tx.users.list(ListQuery())
    assert [str(u.username) for u in page.items] == ["user1"]


async def test_a_deleted_users_email_and_username_stay_taken(
    uow: IdentityUnitOfWorkFactory,
) -> None:
    (user,) = await store(uow, new_user(1))
    async with uow() as tx:
        assert await tx.users.soft_delete(user.id, datetime.now(UTC))
        await tx.commit()
    with pytest.raises(EmailTakenError):
        await store(uow, new_user(2, email=user.email))
    with pytest.raises(UsernameTakenError):
        await store(uow, new_user(2, username=user.username))


async def test_update_writes_fields_and_refreshes_updated_at(
    uow: IdentityUnitOfWorkFactory,
) -> None:
    user, other = await store(uow, new_user(1), new_user(2))
    changed = user.copy(
        username=Username("renamed"),
        email=Email("New@Example.com"),
        tier_code="pro",
        is_superuser=True,
        email_verified=True,
        password_hash="$argon2id$new",
    )
    async with uow() as tx:
        updated = await tx.users.update(changed)
        await tx.commit()
    assert updated.email == Email("new@example.com")
    assert updated.username == Username("renamed")
    assert updated.created_at == user.created_at
    assert updated.updated_at is not None and user.updated_at is not None
    assert updated.updated_at > user.updated_at
    async with uow() as tx:
        assert await tx.users.get(user.id) == updated
        assert await tx.users.get_by_email(Email("new@example.com")) == updated
        assert await tx.users.get_by_email(user.email) is None
        with pytest.raises(EmailTakenError):
            await tx.users.update(updated.copy(email=other.email))
    async with uow() as tx:
        with pytest.raises(UsernameTakenError):
            await tx.users.update(updated.copy(username=other.username))
    async with uow() as tx:
        with pytest.raises(UserNotFoundError):
            await tx.users.update(updated.copy(id=999))


async def test_deactivated_users_are_stored_found_and_locked_like_any_other(
    uow: IdentityUnitOfWorkFactory,
) -> None:
    user, other = await store(uow, new_user(1), new_user(2))
    at = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    async with uow() as tx:
        deactivated = await tx.users.update(user.copy(deactivated_at=at))
        await tx.commit()
    assert deactivated.deactivated_at == at and not deactivated.is_active
    async with uow() as tx:
        assert await tx.users.get(user.id) == deactivated
        assert await tx.users.get_by_email(user.email) == deactivated
        assert await tx.users.lock(user.id) == deactivated
        untouched = await tx.users.get(other.id)
        assert untouched is not None and untouched.deactivated_at is None
        listed = await tx.users.list(
            ListQuery(conditions=parse_filters({"deactivated_at__isnull": False}))
        )
        assert [u.id for u in listed.items] == [user.id]
        back = await tx.users.update(deactivated.copy(deactivated_at=None))
        await tx.commit()
    assert back.deactivated_at is None and back.is_active
    async with uow() as tx:
        found = await tx.users.get(user.id)
        assert found is not None and found.is_active and found.deactivated_at is None


async def test_soft_delete_hides_the_user_unless_asked_and_is_idempotent(
    uow: IdentityUnitOfWorkFactory,
) -> None:
    user, keep = await store(uow, new_user(1), new_user(2))
    first = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    async with uow() as tx:
        assert await tx.users.soft_delete(user.id, first) is True
        assert await tx.users.soft_delete(999, first) is False
        await tx.commit()
    async with uow() as tx:
        assert await tx.users.soft_delete(user.id, first + timedelta(days=1)) is True
        await tx.commit()
    async with uow() as tx:
        assert await tx.users.get(user.id) is None
        assert await tx.users.get_by_email(user.email) is None
        assert await tx.users.get_by_username(user.username) is None
        deleted = await tx.users.get(user.id, include_deleted=True)
        assert deleted is not None and deleted.deleted_at == first and not deleted.is_active
        assert await tx.users.get_by_email(user.email, include_deleted=True) == deleted
        assert await tx.users.get_by_username(user.username, include_deleted=True) == deleted
        live = await tx.users.list(ListQuery())
        everyone = await tx.users.list(ListQuery(include_deleted=True))
    assert [u.id for u in live.items] == [keep.id]
    assert [u.id for u in everyone.items] == [user.id, keep.id]


async def test_leaving_without_commit_or_rolling_back_discards_changes(
    uow: IdentityUnitOfWorkFactory,
) -> None:
    (user,) = await store(uow, new_user(1))
    async with uow() as tx:
        await tx.users.add(new_user(2))
        await tx.users.update(user.copy(username=Username("changed")))
    with pytest.raises(RuntimeError):
        async with uow() as tx:
            await tx.users.soft_delete(user.id, datetime.now(UTC))
            raise RuntimeError("boom")
    async with uow() as tx:
        await tx.users.add(new_user(3))
        await tx.rollback()
        # The unit of work stays usable after an explicit rollback.
        await tx.users.add(new_user(4))
        await tx.commit()
    async with uow() as tx:
        assert await tx.users.get(user.id) == user
        assert await tx.users.get_by_email(Email("user2@example.com")) is None
        assert await tx.users.get_by_email(Email("user3@example.com")) is None
        assert await tx.users.get_by_email(Email("user4@example.com")) is not None


async def test_uncommitted_changes_are_invisible_to_another_unit_of_work(
    uow: IdentityUnitOfWorkFactory, backend: tuple[str, str | None]
) -> None:
    # SQLite serialises transactions (BEGIN IMMEDIATE): a second unit of work waits for
    # the open one instead of reading next to it. Elsewhere the read returns at once.
    serialised = backend[0] == "sqlite"
    patience = 0.3 if serialised else 5.0

    async def read() -> User | None:
        async with uow() as other:
            return await other.users.get_by_email(Email("user1@example.com"))

    async with uow() as writer:
        await writer.users.add(new_user(1))
        reader = asyncio.create_task(read())
        done, _ = await asyncio.wait({reader}, timeout=patience)
        assert bool(done) is not serialised
        await writer.rollback()
        assert await reader is None

    async with uow() as writer:
        await writer.users.add(new_user(1))
        reader = asyncio.create_task(read())
        done, _ = await asyncio.wait({reader}, timeout=patience)
        assert bool(done) is not serialised
        await writer.commit()
    seen = await reader
    # Read before the commit: nothing; waited for the commit: the committed row.
    assert (seen is not None) is serialised


async def test_concurrent_registrations_of_one_email_let_exactly_one_win(
    uow: IdentityUnitOfWorkFactory,
) -> None:
    async def register(n: int) -> User:
        async with uow() as tx:
            user = await tx.users.add(new_user(n, email=Email("same@example.com")))
            await asyncio.sleep(0)
            await tx.commit()
            return user

    results = await asyncio.gather(*(register(n) for n in range(1, 6)), return_exceptions=True)
    winners = [r for r in results if isinstance(r, User)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(error, EmailTakenError) for error in losers), losers
    async with uow() as tx:
        page = await tx.users.list(ListQuery(include_deleted=True))
    assert [u.id for u in page.items] == [winners[0].id]


async def seed_for_lists(uow: IdentityUnitOfWorkFactory) -> list[User]:
    specs = [
        ("carol", "pro", False),
        ("alice", "free", True),
        ("dave", "pro", False),
        ("bob", "free", False),
        ("erin", "pro", True),
        ("frank", "team", False),
    ]
    return await store(
        uow,
        *(
            User(
                email=Email(f"{name}@example.com"),
                username=Username(name),
                password_hash="h",
                tier_code=tier,
            ).copy(is_superuser=admin)
            for name, tier, admin in specs
        ),
    )


async def test_list_filters_sorts_and_pages(uow: IdentityUnitOfWorkFactory) -> None:
    users = await seed_for_lists(uow)
    by_name = {str(u.username): u for u in users}
    async with uow() as tx:
        assert await tx.users.soft_delete(by_name["frank"].id, datetime.now(UTC))
        pros = await tx.users.list(
            ListQuery(conditions=parse_filters({"tier_code": "pro"}), sort=parse_sort("-username"))
        )
        admins = await tx.users.list(
            ListQuery(conditions=parse_filters({"is_superuser": "true", "id__gt": "1"}))
        )
        pattern = await tx.users.list(
            ListQuery(
                conditions=parse_filters(
                    {"email__ilike": "%@EXAMPLE.com", "username__in": ["bob", "erin", "frank"]}
                ),
                sort=parse_sort("username"),
            )
        )
        offset = await tx.users.list(
            ListQuery(sort=parse_sort("username"), page=PageRequest(limit=2, offset=2))
        )
    assert [str(u.username) for u in pros.items] == ["erin", "dave", "carol"]
    assert [str(u.username) for u in admins.items] == ["alice", "erin"]
    assert [str(u.username) for u in pattern.items] == ["bob", "erin"]  # frank is deleted
    assert [str(u.username) for u in offset.items] == ["carol", "dave"]


async def test_cursor_pagination_walks_every_user_once_in_order(
    uow: IdentityUnitOfWorkFactory,
) -> None:
    await seed_for_lists(uow)
    for sort in ("tier_code,-username", "-is_superuser,id", "-created_at"):
        query_sort = parse_sort(sort)
        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        async with uow() as tx:
            everything = await tx.users.list(ListQuery(sort=query_sort))
            while True:
                page = await tx.users.list(
                    ListQuery(sort=query_sort, page=PageRequest(limit=2, cursor=cursor))
                )
                seen.extend(str(u.username) for u in page.items)
                pages += 1
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
        assert seen == [str(u.username) for u in everything.items], sort
        assert len(seen) == 6 and pages == 3, sort


async def test_bad_queries_are_invalid_query_errors(uow: IdentityUnitOfWorkFactory) -> None:
    await seed_for_lists(uow)
    bad = [
        ListQuery(conditions=parse_filters({"nickname": "x"})),
        ListQuery(conditions=parse_filters({"id__gt": "abc"})),
        ListQuery(conditions=parse_filters({"is_superuser__like": "t%"})),
        ListQuery(sort=parse_sort("password_salt")),
        # The hash is never queryable: a prefix filter would be an oracle for it.
        ListQuery(conditions=parse_filters({"password_hash__like": "$argon2%"})),
        ListQuery(sort=parse_sort("password_hash")),
        ListQuery(page=PageRequest(cursor="not-a-cursor")),
    ]
    async with uow() as tx:
        page = await tx.users.list(
            ListQuery(sort=parse_sort("username"), page=PageRequest(limit=1))
        )
        assert page.next_cursor is not None
        bad.append(
            ListQuery(sort=parse_sort("-username"), page=PageRequest(cursor=page.next_cursor))
        )
        for query in bad:
            with pytest.raises(InvalidQueryError):
                await tx.users.list(query)
        # Nothing above reached the database as SQL: the unit of work is still usable.
        assert (await tx.users.list(ListQuery())).items


def test_errors_raised_are_domain_errors() -> None:
    assert issubclass(InvalidQueryError, DomainError)
