"""The `MessageRepository` contract, through the conversations unit of work, on every
adapter: in memory, SQLite (a file per test) and Postgres. (Usage and stale replies are
in `test_message_usage.py`.)"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.sqlalchemy.records_conversations import MessageRecord
from core.conversations.errors import (
    ConversationNotFoundError,
    MessageExistsError,
    MessageNotFoundError,
)
from core.conversations.model import ChatMessage, Message, MessageState, Role
from core.conversations.ports import ConversationsUnitOfWorkFactory
from core.identity.errors import UserNotFoundError
from core.identity.ports import IdentityUnitOfWorkFactory
from core.shared.query import PageRequest
from tests.contracts.test_conversations import add_conversations, conversation
from tests.contracts.test_one_time_tokens import add_users
from tests.contracts.test_payment_records import recent

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
USER, ASSISTANT, SYSTEM = Role.USER, Role.ASSISTANT, Role.SYSTEM
RESERVED, COMPLETED, FAILED = MessageState.RESERVED, MessageState.COMPLETED, MessageState.FAILED


class World:
    """Two users, each with a conversation; alice has a second one."""

    def __init__(self, users: list[int], conversations: list[int]) -> None:
        self.alice, self.bob = users
        self.chat, self.other_chat, self.bobs_chat = conversations


async def make_world(
    identity_uow: IdentityUnitOfWorkFactory, conversations_uow: ConversationsUnitOfWorkFactory
) -> World:
    alice, bob = await add_users(identity_uow, 2)
    stored = await add_conversations(
        conversations_uow, conversation(alice), conversation(alice), conversation(bob)
    )
    return World([alice, bob], [item.id for item in stored if item.id is not None])


@pytest.fixture
async def world(
    identity_uow: IdentityUnitOfWorkFactory, conversations_uow: ConversationsUnitOfWorkFactory
) -> World:
    return await make_world(identity_uow, conversations_uow)


def user_message(w: World, client_id: str | None = "c1", **changes: Any) -> Message:
    changes.setdefault("conversation_id", w.chat)
    changes.setdefault("user_id", w.alice)
    changes.setdefault("content", "Hello?")
    return Message(role=USER, client_message_id=client_id, **changes)


def reply(w: World, to: Message, **changes: Any) -> Message:
    """A reserved reply to `to`, holding a reservation."""
    changes.setdefault("state", RESERVED)
    changes.setdefault("reservation_id", 77)
    return Message(
        conversation_id=to.conversation_id,
        user_id=to.user_id,
        role=ASSISTANT,
        client_message_id=to.client_message_id,
        reply_to=to.id,
        **changes,
    )


async def add_messages(uow: ConversationsUnitOfWorkFactory, *items: Message) -> list[Message]:
    async with uow() as tx:
        stored = [await tx.messages.add(item) for item in items]
        await tx.commit()
    return stored


async def get_message(
    uow: ConversationsUnitOfWorkFactory, message_id: int | None
) -> Message | None:
    async with uow(read_only=True) as tx:
        return await tx.messages.get(message_id or 0)


def finished(message: Message, n: int = 1, **changes: Any) -> Message:
    """`message` completed with a reply (the fields `finish` writes)."""
    changes.setdefault("content", f"Reply {n}")
    changes.setdefault("state", COMPLETED)
    changes.setdefault("model", "gpt-4o-mini-2024-07-18")
    changes.setdefault("input_tokens", 120 + n)
    changes.setdefault("output_tokens", 30 + n)
    changes.setdefault("cost", 2**40 + n)
    changes.setdefault("credits_charged", 3 + n)
    changes.setdefault("latency_ms", 850 + n)
    changes.setdefault("completed_at", NOW + timedelta(microseconds=n))
    return message.copy(**changes)


async def test_add_assigns_an_id_stamps_the_time_unless_given_and_keeps_every_field(
    conversations_uow: ConversationsUnitOfWorkFactory, world: World
) -> None:
    (question,) = await add_messages(conversations_uow, user_message(world, content="Grüße ☕"))
    assert question.id is not None and recent(question.created_at)
    assert question == user_message(world, content="Grüße ☕").copy(
        id=question.id, created_at=question.created_at
    )
    wanted = reply(
        world,
        question,
        content="partial",
        model="m",
        input_tokens=2**40,
        output_tokens=5,
        cost=2**50,
        credits_charged=9,
        latency_ms=12,
        error="boom",
        created_at=NOW,
        completed_at=NOW + timedelta(microseconds=3),
    )
    (answer,) = await add_messages(conversations_uow, wanted)
    assert answer.id is not None and answer.id > question.id
    assert answer == wanted.copy(id=answer.id)
    assert answer.created_at == NOW  # given by the core's clock: kept
    assert await get_message(conversations_uow, answer.id) == answer
    assert await get_message(conversations_uow, question.id) == question
    assert await get_message(conversations_uow, answer.id + 1000) is None


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"conversation_id": 424242}, ConversationNotFoundError),
        ({"user_id": 424242}, UserNotFoundError),
        ({"reply_to": 424242}, MessageNotFoundError),
    ],
    ids=["conversation", "user", "reply_to"],
)
async def test_a_message_needs_what_it_points_at(
    conversations_uow: ConversationsUnitOfWorkFactory,
    world: World,
    changes: dict[str, int],
    error: type[Exception],
) -> None:
    async with conversations_uow() as tx:
        await tx.messages.add(user_message(world, "c0"))
        with pytest.raises(error):
            await tx.messages.add(user_message(world, **changes))
        # A unit with a refused reference is rolled back: nothing of it is stored.
    async with conversations_uow(read_only=True) as tx:
        page = await tx.messages.in_conversation(world.chat, PageRequest())
    assert page.items == []
    # Control: the same message on its own is stored.
    (kept,) = await add_messages(conversations_uow, user_message(world))
    assert await get_message(conversations_uow, kept.id) == kept


async def test_a_reply_may_point_at_a_message_of_the_same_unit(
    conversations_uow: ConversationsUnitOfWorkFactory, world: World
) -> None:
    async with conversations_uow() as tx:
        question = await tx.messages.add(user_message(world))
        answer = await tx.messages.add(reply(world, question))
        await tx.commit()
    assert await get_message(conversations_uow, answer.id) == answer


async def test_a_client_message_id_names_one_user_message_per_conversation(
    conversations_uow: ConversationsUnitOfWorkFactory, world: World
) -> None:
    (first,) = await add_messages(conversations_uow, user_message(world, content="first"))
    with pytest.raises(MessageExistsError):
        await add_messages(conversations_uow, user_message(world, content="again"))
    async with conversations_uow() as tx:
        # Within one unit too, and the refused add leaves the unit usable.
        await tx.messages.add(user_message(world, "c2"))
        with pytest.raises(MessageExistsError):
            await tx.messages.add(user_message(world, "c2"))
        # The same id is free in another conversation; assistant and system messages
        # may repeat it; user messages without one never collide.
        await tx.messages.add(user_message(world, conversation_id=world.other_chat))
        await tx.messages.add(
            user_message(world, user_id=world.bob, conversation_id=world.bobs_chat)
        )
        await tx.messages.add(reply(world, first))
        await tx.messages.add(reply(world, first, state=FAILED, error="timeout"))
        await tx.messages.add(Message(world.chat, world.alice, SYSTEM, client_message_id="c1"))
        await tx.messages.add(user_message(world, None))
        await tx.messages.add(user_message(world, None))
        await tx.commit()
    async with conversations_uow(read_only=True) as tx:
        found = await tx.messages.find_user_message(world.chat, "c1")
        assert found == first
        other = await tx.messages.find_user_message(world.other_chat, "c1")
        assert other is not None and other.id != first.id
        assert (await tx.messages.find_user_message(world.chat, "c2")).content == "Hello?"  # type: ignore[union-attr]
        assert await tx.messages.find_user_message(world.chat, "c3") is None
        assert await tx.messages.find_user_message(world.bobs_chat, "c2") is None
        page = await tx.messages.in_conversation(world.chat, PageRequest(limit=100))
    assert len(page.items) == 7


async def test_of_units_racing_to_add_one_user_message_exactly_one_commits(
    conversations_uow: ConversationsUnitOfWorkFactory, world: World
) -> None:
    async def attempt(n: int) -> bool:
        try:
            async with conversations_uow() as tx:
                await tx.messages.add(user_message(world, "raced", content=f"send {n}"))
                await asyncio.sleep(0.02)
                await tx.commit()
        except MessageExistsError:
            return False
        return True

    results = await asyncio.gather(*(attempt(n) for n in range(5)))
    assert results.count(True) == 1
    async with conversations_uow(read_only=True) as tx:
        found = await tx.messages.find_user_message(world.chat, "raced")
        page = await tx.messages.in_conversation(world.chat, PageRequest())
    assert found is not None and found.content == f"send {results.index(True)}"
    assert page.items == [found]


async def test_a_duplicate_found_only_at_commit_is_a_message_exists_error(
    identity_backend: tuple[str, str | None],
    conversations_uow: ConversationsUnitOfWorkFactory,
    world: World,
) -> None:
    (stored,) = await add_messages(conversations_uow, user_message(world))
    async with conversations_uow() as tx:
        if identity_backend[0] == "memory":
            # In memory a unit sees nothing of another's uncommitted add: the commit
            # is where a duplicate is found.
            await tx.messages.add(user_message(world, "c2"))
            await add_messages(conversations_uow, user_message(world, "c2"))
        else:
            # The SQL repositories write at once; a row left for the commit's flush
            # (the ORM's way) must fail the same way there.
            session = tx._session  # type: ignore[attr-defined]
            session.add(
                MessageRecord(
                    conversation_id=world.chat,
                    user_id=world.alice,
                    role="user",
                    state="completed",
                    client_message_id="c1",
                    created_at=NOW,
                )
            )
        with pytest.raises(MessageExistsError):
            await tx.commit()
    async with conversations_uow(read_only=True) as tx:
        assert await tx.messages.find_user_message(world.chat, "c1") == stored


async def test_reply_to_finds_the_latest_reply_to_a_user_message(
    conversations_uow: ConversationsUnitOfWorkFactory, world: World
) -> None:
    question, unanswered = await add_messages(
        conversations_uow, user_message(world), user_message(world, "c2")
    )
    async with conversations_uow() as tx:
        assert await tx.messages.reply_to(question.id or 0) is None
        failed = await tx.messages.add(reply(world, question, state=FAILED))
        assert await tx.messages.reply_to(question.id or 0) == failed
        retried = await tx.messages.add(reply(world, question))
        await tx.commit()
    async with conversations_uow(read_only=True) as tx:
        assert await tx.messages.reply_to(question.id or 0) == retried
        assert await tx.messages.reply_to(unanswered.id or 0) is None
        assert await tx.messages.reply_to(retried.id or 0) is None


async def test_finish_writes_the_reply_fields_of_a_reserved_message_once(
    conversations_uow: ConversationsUnitOfWorkFactory, world: World
) -> None:
    (question,) = await add_messages(conversations_uow, user_message(world))
    (answer,) = await add_messages(conversations_uow, reply(world, question, content="..."))
    # Every other field is the row's: ids, role, links, reservation, creation time.
    sent = finished(
        answer.copy(
            conversation_id=world.other_chat,
            user_id=world.bob,
            role=USER,
            client_message_id="other",
            reply_to=None,
            reservation_id=None,
            created_at=NOW,
        )
    )
    async with conversations_uow() as tx:
        done = await tx.messages.finish(sent)
        await tx.commit()
    assert done == finished(answer)
    assert await get_message(conversations_uow, answer.id) == done
    async with conversations_uow() as tx:
        assert await tx.messages.finish(finished(answer, 2)) is None
        assert await tx.messages.finish(finished(answer, 2, state=FAILED)) is None
        assert await tx.messages.finish(finished(answer.copy(id=(answer.id or 0) + 1000))) is None
        await tx.commit()
    assert await get_message(conversations_uow, answer.id) == done
    # A failure is finished the same way, once.
    (other,) = await add_messages(conversations_uow, reply(world, question))
    failure = other.copy(state=FAILED, error="ModelTimeoutError: no answer", completed_at=NOW)
    async with conversations_uow() as tx:
        assert await tx.messages.finish(failure) == failure
        await tx.commit()
    # A user message is never reserved: nothing to finish.
    async with conversations_uow() as tx:
        assert await tx.messages.finish(finished(question)) is None


async def test_of_ten_concurrent_finishes_exactly_one_wins(
    conversations_uow: ConversationsUnitOfWorkFactory, world: World
) -> None:
    (question,) = await add_messages(conversations_uow, user_message(world))
    (answer,) = await add_messages(conversations_uow, reply(world, question))

    async def attempt(n: int) -> Message | None:
        async with conversations_uow() as tx:
            done = await tx.messages.finish(finished(answer, n))
            await asyncio.sleep(0.01)
            await tx.commit()
        return done

    results = await asyncio.gather(*(attempt(n) for n in range(10)))
    winners = [result for result in results if result is not None]
    assert len(winners) == 1
    assert await get_message(conversations_uow, answer.id) == winners[0]
    assert winners[0] == finished(answer, results.index(winners[0]))


async def test_finish_is_undone_by_a_rollback(
    conversations_uow: ConversationsUnitOfWorkFactory, world: World
) -> None:
    (question,) = await add_messages(conversations_uow, user_message(world))
    (answer,) = await add_messages(conversations_uow, reply(world, question))
    async with conversations_uow() as tx:
        assert await tx.messages.finish(finished(answer)) is not None
        assert (await tx.messages.get(answer.id or 0)).state is COMPLETED  # type: ignore[union-attr]
        added = await tx.messages.add(user_message(world, "c2"))
        await tx.rollback()
    assert await get_message(conversations_uow, answer.id) == answer
    assert await get_message(conversations_uow, added.id) is None
    async with conversations_uow() as tx:
        assert await tx.messages.find_user_message(world.chat, "c2") is None
        # Still reserved, so it can be finished.
        assert await tx.messages.finish(finished(answer)) == finished(answer)


async def test_history_is_the_newest_completed_messages_oldest_first(
    conversations_uow: ConversationsUnitOfWorkFactory, world: World
) -> None:
    async with conversations_uow(read_only=True) as tx:
        assert await tx.messages.history(world.chat, 10) == []
    stored: list[Message] = []
    for n in range(4):
        (question,) = await add_messages(conversations_uow, user_message(world, f"c{n}"))
        (answer,) = await add_messages(conversations_uow, reply(world, question))
        stored.append(question)
        if n != 2:  # the third reply never completes
            async with conversations_uow() as tx:
                done = await tx.messages.finish(
                    finished(answer, n, state=FAILED if n == 1 else COMPLETED)
                )
                await tx.commit()
            if n != 1:
                stored.append(done)  # type: ignore[arg-type]
    await add_messages(
        conversations_uow,
        user_message(world, "elsewhere", conversation_id=world.other_chat),
        user_message(world, "bob", user_id=world.bob, conversation_id=world.bobs_chat),
    )
    sent = [ChatMessage(m.role, m.content) for m in stored]
    async with conversations_uow(read_only=True) as tx:
        assert await tx.messages.history(world.chat, 100) == sent
        assert await tx.messages.history(world.chat, 3) == sent[-3:]
        assert await tx.messages.history(world.chat, 1) == sent[-1:]
        assert await tx.messages.history(world.chat, 0) == []
        assert await tx.messages.history(world.other_chat, 5) == [ChatMessage(USER, "Hello?")]
        assert await tx.messages.history(424242, 5) == []


async def test_a_conversations_messages_are_paged_oldest_first(
    conversations_uow: ConversationsUnitOfWorkFactory, world: World
) -> None:
    stored = await add_messages(
        conversations_uow, *(user_message(world, f"c{n}") for n in range(7))
    )
    await add_messages(conversations_uow, user_message(world, conversation_id=world.other_chat))
    (answer,) = await add_messages(conversations_uow, reply(world, stored[0]))
    pages = []
    cursor = None
    async with conversations_uow(read_only=True) as tx:
        while True:
            page = await tx.messages.in_conversation(
                world.chat, PageRequest(limit=3, cursor=cursor)
            )
            pages.append(page.items)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert (await tx.messages.in_conversation(424242, PageRequest())).items == []
    # Every message, whatever its role or state.
    assert pages == [stored[:3], stored[3:6], [stored[6], answer]]
