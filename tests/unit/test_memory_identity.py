"""What the in-memory identity adapter must do beyond the shared contract suite."""

from __future__ import annotations

import pytest

from adapters.memory.unit_of_work import InMemoryUnitOfWorkFactory
from core.identity.errors import EmailTakenError
from core.identity.model import Email, User, Username
from core.shared.query import ListQuery


def user(n: int, **changes: object) -> User:
    return User(
        email=Email(f"u{n}@example.com"), username=Username(f"user{n}"), password_hash="h"
    ).copy(**changes)


async def test_uniqueness_is_checked_again_at_commit_and_a_failed_commit_applies_nothing() -> None:
    factory = InMemoryUnitOfWorkFactory()
    first, second = factory(), factory()
    async with first, second:
        await first.users.add(user(1, email=Email("same@example.com")))
        # Neither sees the other's uncommitted row, so both adds pass...
        await second.users.add(user(2))
        await second.users.add(user(3, email=Email("same@example.com")))
        await first.commit()
        # ...and the commit, which is atomic, refuses the whole second transaction.
        with pytest.raises(EmailTakenError):
            await second.commit()
        assert await second.users.get_by_email(Email("u2@example.com")) is None
    async with factory() as uow:
        emails = [
            str(u.email) for u in (await uow.users.list(ListQuery(include_deleted=True))).items
        ]
    assert emails == ["same@example.com"]


async def test_ids_are_never_reused_after_a_rollback() -> None:
    factory = InMemoryUnitOfWorkFactory()
    async with factory() as uow:
        rolled_back = await uow.users.add(user(1))
    async with factory() as uow:
        kept = await uow.users.add(user(2))
        await uow.commit()
    assert rolled_back.id == 1 and kept.id == 2


async def test_returned_users_are_copies() -> None:
    factory = InMemoryUnitOfWorkFactory()
    async with factory() as uow:
        stored = await uow.users.add(user(1))
        await uow.commit()
    stored.username = Username("mutated")
    async with factory() as uow:
        again = await uow.users.get(1)
        assert again is not None and again.username == Username("user1")
        again.tier_code = "mutated"
        fresh = await uow.users.get(1)
        assert fresh is not None and fresh.tier_code == "free"
