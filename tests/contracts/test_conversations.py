"""The `ConversationRepository` contract, through the conversations unit of work, on
every adapter: in memory, SQLite (a file per test) and Postgres. (Messages are in
`test_messages.py`, model prices in `test_model_prices.py`; they share the helpers
here.)"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.conversations.errors import ConversationNotFoundError
from core.conversations.model import Conversation
from core.conversations.ports import ConversationsUnitOfWorkFactory
from core.identity.errors import UserNotFoundError
from core.identity.ports import IdentityUnitOfWorkFactory
from core.shared.query import InvalidQueryError, PageRequest
from tests.contracts.test_one_time_tokens import add_users
from tests.contracts.test_payment_records import recent

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def users(identity_uow: IdentityUnitOfWorkFactory) -> list[int]:
    return await add_users(identity_uow, 2)


def conversation(user_id: int, **changes: Any) -> Conversation:
    changes.setdefault("model", "gpt-4o-mini")
    return Conversation(user_id=user_id, **changes)


async def add_conversations(
    uow: ConversationsUnitOfWorkFactory, *items: Conversation
) -> list[Conversation]:
    async with uow() as tx:
        stored = [await tx.conversations.add(item) for item in items]
        await tx.commit()
    return stored


async def get_conversation(
    uow: ConversationsUnitOfWorkFactory, conversation_id: int
) -> Conversation | None:
    async with uow(read_only=True) as tx:
        return await tx.conversations.get(conversation_id)


async def listed(
    uow: ConversationsUnitOfWorkFactory, user_id: int, limit: int = 100
) -> list[list[int | None]]:
    """Every page of the user's conversations, as lists of ids."""
    pages: list[list[int | None]] = []
    cursor = None
    async with uow(read_only=True) as tx:
        while True:
            page = await tx.conversations.for_user(user_id, PageRequest(limit=limit, cursor=cursor))
            pages.append([item.id for item in page.items])
            if page.next_cursor is None:
                return pages
            cursor = page.next_cursor


async def test_add_assigns_an_id_and_stamps_the_conversation(
    conversations_uow: ConversationsUnitOfWorkFactory, users: list[int]
) -> None:
    wanted = conversation(
        users[0],
        model="meta-llama/Llama-3-8B",
        title="Grüße ☕ " + "t" * 190,
        system_prompt="Be brief.\n" + "日本語 " * 2000,
        created_at=NOW,
        updated_at=NOW,
    )
    (stored,) = await add_conversations(conversations_uow, wanted)
    assert stored.id is not None and recent(stored.created_at)
    assert stored.updated_at == stored.created_at
    assert stored == wanted.copy(
        id=stored.id, created_at=stored.created_at, updated_at=stored.updated_at
    )
    assert await get_conversation(conversations_uow, stored.id) == stored
    assert await get_conversation(conversations_uow, stored.id + 1000) is None
    (other,) = await add_conversations(conversations_uow, conversation(users[1]))
    assert other.id != stored.id and other.title == "" and other.system_prompt == ""


async def test_a_conversation_needs_an_existing_user(
    conversations_uow: ConversationsUnitOfWorkFactory, users: list[int]
) -> None:
    with pytest.raises(UserNotFoundError):
        await add_conversations(conversations_uow, conversation(424242))
    async with conversations_uow(read_only=True) as tx:
        assert (await tx.conversations.for_user(424242, PageRequest())).items == []


async def test_update_writes_title_prompt_and_times_only(
    conversations_uow: ConversationsUnitOfWorkFactory, users: list[int]
) -> None:
    alice, bob = users
    (stored,) = await add_conversations(conversations_uow, conversation(alice, title="Old"))
    assert stored.id is not None
    later = NOW + timedelta(days=400, microseconds=7)
    replacement = conversation(
        bob,
        model="other-model",
        title="New",
        system_prompt="You are terse.",
        updated_at=later,
        deleted_at=later + timedelta(seconds=1),
        created_at=NOW,
        id=stored.id,
    )
    async with conversations_uow() as tx:
        changed = await tx.conversations.update(replacement)
        await tx.commit()
    assert changed == stored.copy(
        title="New",
        system_prompt="You are terse.",
        updated_at=later,
        deleted_at=later + timedelta(seconds=1),
    )
    # A deleted conversation is still found by id, and can be restored.
    assert await get_conversation(conversations_uow, stored.id) == changed
    async with conversations_uow() as tx:
        restored = await tx.conversations.update(changed.copy(deleted_at=None, updated_at=None))
        await tx.commit()
    assert restored.deleted_at is None and recent(restored.updated_at)
    assert await get_conversation(conversations_uow, stored.id) == restored
    with pytest.raises(ConversationNotFoundError):
        async with conversations_uow() as tx:
            await tx.conversations.update(stored.copy(id=stored.id + 1000))
    with pytest.raises(ConversationNotFoundError):
        async with conversations_uow() as tx:
            await tx.conversations.update(conversation(alice))


async def test_a_users_conversations_are_paged_most_recently_updated_first(
    conversations_uow: ConversationsUnitOfWorkFactory, users: list[int]
) -> None:
    alice, bob = users
    stored = await add_conversations(
        conversations_uow, *(conversation(alice, title=f"c{n}") for n in range(7))
    )
    await add_conversations(conversations_uow, conversation(bob))
    ids = [item.id for item in stored]
    async with conversations_uow() as tx:
        for n, item in enumerate(stored):
            await tx.conversations.update(item.copy(updated_at=NOW + timedelta(minutes=n)))
        # Two share a time: the id breaks the tie, the higher first.
        await tx.conversations.update(stored[2].copy(updated_at=NOW + timedelta(minutes=3)))
        await tx.commit()
    expected = [ids[6], ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]]
    assert await listed(conversations_uow, alice, limit=3) == [
        expected[:3],
        expected[3:6],
        expected[6:],
    ]
    assert await listed(conversations_uow, alice, limit=7) == [expected]
    # Updating one moves it to the front.
    async with conversations_uow() as tx:
        await tx.conversations.update(stored[0].copy(updated_at=NOW + timedelta(hours=1)))
        await tx.commit()
    assert await listed(conversations_uow, alice) == [[ids[0], *expected[:-1]]]
    assert await listed(conversations_uow, 424242) == [[]]


async def test_deleted_conversations_are_left_out_of_the_list_but_found_by_id(
    conversations_uow: ConversationsUnitOfWorkFactory, users: list[int]
) -> None:
    alice = users[0]
    first, second, third = await add_conversations(
        conversations_uow, *(conversation(alice, title=f"c{n}") for n in range(3))
    )
    async with conversations_uow() as tx:
        await tx.conversations.update(second.copy(deleted_at=NOW))
        await tx.commit()
    pages = await listed(conversations_uow, alice, limit=1)
    assert pages == [[third.id], [first.id]]
    assert second.id is not None
    found = await get_conversation(conversations_uow, second.id)
    assert found is not None and found.deleted_at == NOW


async def test_a_bad_cursor_is_refused_and_a_good_one_continues(
    conversations_uow: ConversationsUnitOfWorkFactory, users: list[int]
) -> None:
    await add_conversations(conversations_uow, *(conversation(users[0]) for _ in range(3)))
    async with conversations_uow(read_only=True) as tx:
        page = await tx.conversations.for_user(users[0], PageRequest(limit=1))
        assert page.next_cursor is not None
        with pytest.raises(InvalidQueryError):
            await tx.conversations.for_user(users[0], PageRequest(cursor="not a cursor"))
        rest = await tx.conversations.for_user(users[0], PageRequest(cursor=page.next_cursor))
        assert len(rest.items) == 2 and rest.next_cursor is None


async def test_nothing_is_visible_after_a_rollback(
    conversations_uow: ConversationsUnitOfWorkFactory, users: list[int]
) -> None:
    (kept,) = await add_conversations(conversations_uow, conversation(users[0], title="kept"))
    async with conversations_uow() as tx:
        added = await tx.conversations.add(conversation(users[0], title="dropped"))
        await tx.conversations.update(kept.copy(title="changed", deleted_at=NOW))
        # The unit sees its own writes.
        assert added.id is not None and await tx.conversations.get(added.id) == added
        assert (await tx.conversations.get(kept.id or 0)).title == "changed"  # type: ignore[union-attr]
        await tx.rollback()
    assert await get_conversation(conversations_uow, added.id) is None
    assert await get_conversation(conversations_uow, kept.id or 0) == kept
    assert await listed(conversations_uow, users[0]) == [[kept.id]]


async def test_concurrent_updates_of_one_conversation_never_conflict(
    conversations_uow: ConversationsUnitOfWorkFactory, users: list[int]
) -> None:
    (stored,) = await add_conversations(conversations_uow, conversation(users[0]))
    order: list[str] = []

    async def rename(title: str, pause: float) -> None:
        async with conversations_uow() as tx:
            await tx.conversations.update(stored.copy(title=title, updated_at=None))
            await asyncio.sleep(pause)
            await tx.commit()
            order.append(title)

    titles = ["a", "b", "c", "d"]
    await asyncio.gather(*(rename(t, 0.01 * (4 - n)) for n, t in enumerate(titles)))
    found = await get_conversation(conversations_uow, stored.id or 0)
    assert found is not None and found.title == order[-1]
