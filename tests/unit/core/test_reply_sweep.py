"""Replies a crashed process left `reserved`: the sweep fails them and closes their
reservations as the ledger requires (settled to a recorded cost, else released)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from core.billing.reservations import ReservationService
from core.conversations.maintenance import INTERRUPTED, ReplySweep
from core.conversations.model import (
    ChatDelta,
    ChatMessage,
    ChatParams,
    ChatReply,
    ChatUsage,
    Message,
    MessageState,
    Role,
)
from core.conversations.ports import ChatModel
from core.identity.model import User
from tests.unit.core.conversations_world import ConversationsWorld


class HangingModel(ChatModel):
    """A model whose calls never end: the process 'dies' while it is being called."""

    def __init__(self) -> None:
        self.called = asyncio.Event()

    async def complete(
        self, messages: Sequence[ChatMessage], model: str, params: ChatParams
    ) -> ChatReply:
        self.called.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def stream(
        self, messages: Sequence[ChatMessage], model: str, params: ChatParams
    ) -> AsyncIterator[ChatDelta | ChatUsage]:
        self.called.set()
        await asyncio.Event().wait()
        yield ChatUsage(model, 0, 0)


@pytest.fixture
async def world() -> ConversationsWorld:
    # A long model timeout, so the send under test is still 'in flight' when swept.
    return await ConversationsWorld(
        HangingModel(), llm={"max_output_tokens": 50, "timeout_seconds": 900}
    ).seeded()


async def _abandoned_send(world: ConversationsWorld) -> tuple[User, Message, asyncio.Task[object]]:
    """A send stuck in the model call, as a process that died there leaves it."""
    user = await world.funded()
    conversation = await world.conversations.create(user)
    assert conversation.id is not None
    task: asyncio.Task[object] = asyncio.create_task(
        world.messages.send(user, conversation.id, "hello", client_message_id="m1")
    )
    model = world.chat_model
    assert isinstance(model, HangingModel)
    await asyncio.wait_for(model.called.wait(), 5)
    *_, reply = await world.all_messages(conversation.id)
    assert reply.role is Role.ASSISTANT and reply.state is MessageState.RESERVED
    return user, reply, task


async def _finish(task: asyncio.Task[object]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.05)  # the cancelled send's own cleanup task


async def test_a_live_reply_is_left_alone(world: ConversationsWorld) -> None:
    user, reply, task = await _abandoned_send(world)
    sweep = world.services.get(ReplySweep)
    world.clock.advance(seconds=60)
    assert await sweep.sweep() == 0
    *_, still = await world.all_messages(reply.conversation_id)
    assert still.state is MessageState.RESERVED
    assert user.id is not None and await world.credits.balance(user.id) < 10_000  # still held
    await _finish(task)
    await world.assert_ledger_exact(user)


async def test_an_abandoned_reply_is_failed_and_its_credits_released(
    world: ConversationsWorld,
) -> None:
    user, reply, task = await _abandoned_send(world)
    sweep = world.services.get(ReplySweep)
    world.clock.advance(seconds=sweep.abandoned_after.total_seconds() + 1)
    assert await sweep.sweep() == 1
    assert await sweep.sweep() == 0  # closed once
    *_, swept = await world.all_messages(reply.conversation_id)
    assert swept.state is MessageState.FAILED and swept.error == INTERRUPTED
    assert swept.credits_charged == 0
    assert user.id is not None and await world.credits.balance(user.id) == 10_000
    await world.assert_ledger_exact(user)
    await _finish(task)  # the send waking up later changes nothing
    assert await world.credits.balance(user.id) == 10_000
    await world.assert_ledger_exact(user)


async def test_a_reply_whose_cost_was_recorded_is_charged_that_cost(
    world: ConversationsWorld,
) -> None:
    user, reply, task = await _abandoned_send(world)
    assert reply.reservation_id is not None
    async with world.billing_uow(read_only=True) as tx:
        held = await tx.reservations.get(reply.reservation_id)
    assert held is not None
    cost = held.amount  # what the provider's usage came to, at most the worst case
    # The process died after noting the provider's cost, before saving the reply.
    await world.services.get(ReservationService).record_usage(reply.reservation_id, cost)
    sweep = world.services.get(ReplySweep)
    world.clock.advance(seconds=sweep.abandoned_after.total_seconds() + 1)
    assert await sweep.sweep() == 1
    *_, swept = await world.all_messages(reply.conversation_id)
    assert swept.state is MessageState.FAILED and swept.credits_charged == cost
    assert user.id is not None and await world.credits.balance(user.id) == 10_000 - cost
    await world.assert_ledger_exact(user)
    await _finish(task)
    assert await world.credits.balance(user.id) == 10_000 - cost


async def test_a_reply_whose_reservation_was_settled_shows_that_charge(
    world: ConversationsWorld,
) -> None:
    user, reply, task = await _abandoned_send(world)
    assert reply.reservation_id is not None
    # The process died after settling to the provider's cost, before saving the reply.
    settled = await world.services.get(ReservationService).settle(reply.reservation_id, 1)
    sweep = world.services.get(ReplySweep)
    world.clock.advance(seconds=sweep.abandoned_after.total_seconds() + 1)
    assert await sweep.sweep() == 1
    *_, swept = await world.all_messages(reply.conversation_id)
    assert (
        swept.state is MessageState.FAILED and swept.credits_charged == settled.settled_amount == 1
    )
    assert user.id is not None and await world.credits.balance(user.id) == 10_000 - 1
    await world.assert_ledger_exact(user)
    await _finish(task)
