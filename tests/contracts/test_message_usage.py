"""The `MessageRepository` contract, continued: `usage` and `stale_reserved`, on every
adapter (in memory, SQLite, Postgres). Messages are stamped when added, so these tests
move stored messages back in time (`backdate`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text, update

from adapters.memory.unit_of_work import InMemoryUnitOfWorkFactory
from adapters.sqlalchemy.records_conversations import MessageRecord
from core.conversations.model import Message, MessageState, UsageTotal
from core.conversations.ports import ConversationsUnitOfWorkFactory
from core.identity.ports import IdentityUnitOfWorkFactory
from tests.contracts.conftest import UnitOfWorkFactory
from tests.contracts.test_messages import (
    World,
    add_messages,
    finished,
    make_world,
    reply,
    user_message,
)

D1 = datetime(2026, 3, 1, tzinfo=UTC)
D2, D3 = D1 + timedelta(days=1), D1 + timedelta(days=2)
US = timedelta(microseconds=1)
RESERVED, COMPLETED, FAILED = MessageState.RESERVED, MessageState.COMPLETED, MessageState.FAILED


async def backdate(factory: UnitOfWorkFactory, message: Message, created_at: datetime) -> Message:
    """Move a stored message's creation time (the repository stamps the time of `add`)."""
    assert message.id is not None
    if isinstance(factory, InMemoryUnitOfWorkFactory):
        rows = factory.database.messages.rows
        rows[message.id] = rows[message.id].copy(created_at=created_at)
    else:
        async with factory() as tx:
            await tx._session.execute(
                update(MessageRecord)
                .where(MessageRecord.id == message.id)
                .values(created_at=created_at)
            )
            await tx.commit()
    return message.copy(created_at=created_at)


async def store(
    factory: UnitOfWorkFactory, w: World, at: datetime, state: MessageState, **changes: Any
) -> Message:
    """An assistant message (a reply to a fresh user message) in `state`, made at `at`."""
    (question,) = await add_messages(factory, user_message(w, None, **changes))
    (answer,) = await add_messages(factory, reply(w, question))
    if state is not RESERVED:
        async with factory() as tx:
            done = await tx.messages.finish(finished(answer, state=state, **_reply_of(changes)))
            await tx.commit()
        assert done is not None
        answer = done
    await backdate(factory, question, at)
    return await backdate(factory, answer, at)


def _reply_of(changes: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in changes.items() if k not in ("conversation_id", "user_id")}


def usage(
    model: str, input_tokens: int, output_tokens: int, cost: int, credits: int, count: int
) -> UsageTotal:
    return UsageTotal(model, input_tokens, output_tokens, cost, credits, count)


@pytest.fixture
async def world(
    identity_uow: IdentityUnitOfWorkFactory, conversations_uow: ConversationsUnitOfWorkFactory
) -> World:
    return await make_world(identity_uow, conversations_uow)


@pytest.fixture
async def used(unit_of_work_factory: UnitOfWorkFactory, world: World) -> World:
    """Alice's completed replies over two days, and what must not count."""
    f, w = unit_of_work_factory, world

    async def done(
        at: datetime, model: str, counts: tuple[int, int, int, int], **more: Any
    ) -> None:
        tokens_in, tokens_out, cost, credits = counts
        await store(
            f,
            w,
            at,
            more.pop("state", COMPLETED),
            model=model,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            cost=cost,
            credits_charged=credits,
            **more,
        )

    await done(D1, "gpt-4o", (10, 20, 100, 1))  # at `since`: counted
    await done(D2 - US, "gpt-4o-mini", (1, 2, 2**40, 2))
    await done(D2, "gpt-4o", (5, 5, 50, 3))
    await done(D2 + timedelta(hours=12), "gpt-4o", (1, 1, 1, 1), conversation_id=w.other_chat)
    await done(D2 + timedelta(hours=1), "GPT-4o", (7, 7, 7, 7))
    await done(D2 + timedelta(hours=2), "gpt4", (3, 3, 3, 3))
    # None of these count: outside [since, until), not completed, another user's.
    await done(D3, "gpt-4o", (1000, 0, 0, 0))
    await done(D1 - US, "gpt-4o", (1000, 0, 0, 0))
    await done(D1 + timedelta(hours=3), "gpt-4o", (1000, 0, 0, 0), state=FAILED)
    await done(D1 + timedelta(hours=4), "gpt-4o", (1000, 0, 0, 0), state=RESERVED)
    await done(
        D1 + timedelta(hours=5),
        "gpt-4o",
        (1000, 0, 0, 0),
        user_id=w.bob,
        conversation_id=w.bobs_chat,
    )
    return w


async def totals(
    uow: ConversationsUnitOfWorkFactory, user_id: int, group_by: Any, since: datetime = D1
) -> list[UsageTotal]:
    async with uow(read_only=True) as tx:
        return await tx.messages.usage(user_id, since, D3, group_by)


async def test_usage_sums_a_users_completed_replies_per_model(
    conversations_uow: ConversationsUnitOfWorkFactory, used: World
) -> None:
    # Sorted by code point: upper case first, `-` before digits and letters.
    assert await totals(conversations_uow, used.alice, "model") == [
        usage("GPT-4o", 7, 7, 7, 7, 1),
        usage("gpt-4o", 16, 26, 151, 5, 3),
        usage("gpt-4o-mini", 1, 2, 2**40, 2, 1),
        usage("gpt4", 3, 3, 3, 3, 1),
    ]
    # The window starts at `since`, inclusive.
    assert (await totals(conversations_uow, used.alice, "model", since=D1 + US))[1] == usage(
        "gpt-4o", 6, 6, 51, 4, 2
    )
    assert await totals(conversations_uow, 424242, "model") == []


async def test_usage_sums_a_users_completed_replies_per_utc_day(
    identity_backend: tuple[str, str | None],
    conversations_uow: ConversationsUnitOfWorkFactory,
    used: World,
) -> None:
    expected = [
        usage("2026-03-01", 11, 22, 100 + 2**40, 3, 2),
        usage("2026-03-02", 16, 16, 61, 14, 4),
    ]
    assert await totals(conversations_uow, used.alice, "day") == expected
    assert await totals(conversations_uow, used.alice, "day", since=D2) == expected[1:]
    async with conversations_uow(read_only=True) as tx:
        if identity_backend[0] == "postgres":
            # The day is UTC's whatever the session's time zone (+13:00 in March).
            await tx._session.execute(text("SET LOCAL TIME ZONE 'Pacific/Auckland'"))  # type: ignore[attr-defined]
        assert await tx.messages.usage(used.alice, D1, D3, "day") == expected
    # Bob's one reply, at the time he has.
    async with conversations_uow(read_only=True) as tx:
        bobs = await tx.messages.usage(used.bob, D1, D3, "day")
    assert bobs == [usage("2026-03-01", 1000, 0, 0, 0, 1)]


async def test_usage_refuses_an_unknown_grouping(
    conversations_uow: ConversationsUnitOfWorkFactory, used: World
) -> None:
    with pytest.raises(ValueError):
        await totals(conversations_uow, used.alice, "week")


async def test_stale_reserved_lists_replies_reserved_before_a_time_oldest_first(
    unit_of_work_factory: UnitOfWorkFactory,
    conversations_uow: ConversationsUnitOfWorkFactory,
    world: World,
) -> None:
    f, w, t = unit_of_work_factory, world, D2
    oldest = await store(f, w, t - timedelta(minutes=10), RESERVED)
    twin_a = await store(f, w, t - timedelta(minutes=5), RESERVED)
    twin_b = await store(f, w, t - timedelta(minutes=5), RESERVED, conversation_id=w.other_chat)
    bobs = await store(
        f, w, t - timedelta(minutes=7), RESERVED, user_id=w.bob, conversation_id=w.bobs_chat
    )
    at_cutoff = await store(f, w, t, RESERVED)
    await store(f, w, t + timedelta(minutes=1), RESERVED)
    await store(f, w, t - timedelta(hours=1), COMPLETED)
    await store(f, w, t - timedelta(hours=1), FAILED)
    async with conversations_uow(read_only=True) as tx:
        assert await tx.messages.stale_reserved(t, 10) == [oldest, bobs, twin_a, twin_b]
        assert await tx.messages.stale_reserved(t, 2) == [oldest, bobs]
        assert await tx.messages.stale_reserved(t, 0) == []
        assert (await tx.messages.stale_reserved(t + US, 10))[-1] == at_cutoff
        assert await tx.messages.stale_reserved(t - timedelta(hours=2), 10) == []
    # Once finished, a reply is no longer stale.
    async with conversations_uow() as tx:
        assert await tx.messages.finish(finished(oldest)) is not None
        assert await tx.messages.stale_reserved(t, 10) == [bobs, twin_a, twin_b]
