"""Sending messages through the real OpenAI adapter (the official SDK) to a local
OpenAI-compatible server the test starts: plain and streamed replies counted and
charged; 429, 5xx, a timeout and a stream cut midway each charge nothing; the ledger is
exact after every one (nothing left reserved, balance = sum of the ledger)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from adapters.openai.chat import OpenAIChatModel
from core.conversations.errors import (
    ModelRateLimitedError,
    ModelTimeoutError,
    ModelUnavailableError,
)
from core.conversations.model import ChatDelta, MessageState
from core.conversations.repeats import SendResult
from core.identity.model import User
from tests.fakes.openai_server import FakeOpenAIServer, running_fake_openai
from tests.unit.core.conversations_world import ConversationsWorld

pytestmark = pytest.mark.integration

GRANT = 10_000


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with running_fake_openai() as found:
        yield found


@pytest.fixture
async def world(server: FakeOpenAIServer) -> AsyncIterator[ConversationsWorld]:
    model = OpenAIChatModel(
        base_url=server.base_url, api_key=server.api_key, timeout_seconds=2, max_retries=1
    )
    try:
        yield await ConversationsWorld(
            model, llm={"max_output_tokens": 64, "timeout_seconds": 2}
        ).seeded()
    finally:
        await model.close()


async def _conversation(world: ConversationsWorld) -> tuple[User, int]:
    user = await world.funded(credits=GRANT)
    conversation = await world.conversations.create(user)
    assert conversation.id is not None
    return user, conversation.id


async def _spent(world: ConversationsWorld, user: User) -> int:
    assert user.id is not None
    await world.assert_ledger_exact(user)
    return GRANT - await world.credits.balance(user.id)


async def test_plain_and_streamed_replies_are_counted_and_charged(
    world: ConversationsWorld, server: FakeOpenAIServer
) -> None:
    user, conversation = await _conversation(world)
    plain = await world.messages.send(user, conversation, "Hello over HTTP")
    assert plain.reply.content.endswith("You said: Hello over HTTP")
    assert plain.reply.input_tokens > 0 and plain.reply.output_tokens > 0
    items = [i async for i in await world.messages.stream(user, conversation, "Stream it")]
    *deltas, done = items
    assert isinstance(done, SendResult)
    assert "".join(d.text for d in deltas if isinstance(d, ChatDelta)) == done.reply.content
    charged = plain.reply.credits_charged + done.reply.credits_charged
    assert charged > 0 and await _spent(world, user) == charged
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("rate_limited", ModelRateLimitedError),
        ("server_error", ModelUnavailableError),
        ("timeout", ModelTimeoutError),
        ("cut", ModelUnavailableError),
    ],
)
async def test_a_failed_call_charges_nothing_and_the_ledger_stays_exact(
    world: ConversationsWorld, server: FakeOpenAIServer, fault: str, error: type[Exception]
) -> None:
    user, conversation = await _conversation(world)
    if fault == "rate_limited":
        server.fail_next(429, retry_after="30")  # longer than the call may wait: no retry
    elif fault == "server_error":
        server.fail_next(500, times=2)  # the first attempt and its one retry
    elif fault == "timeout":
        server.hang_next(10)
    else:
        server.cut_next(after_deltas=3)
    with pytest.raises(error):
        if fault == "cut":
            async for _ in await world.messages.stream(user, conversation, "x" * 40):
                pass
        else:
            await world.messages.send(user, conversation, "x" * 40)
    *_, reply = await world.all_messages(conversation)
    assert reply.state is MessageState.FAILED
    assert await _spent(world, user) == 0
    # The next message goes through and is charged alone.
    ok = await world.messages.send(user, conversation, "again")
    assert await _spent(world, user) == ok.reply.credits_charged > 0
