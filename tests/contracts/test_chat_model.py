"""The `ChatModel` contract, on `ScriptedChatModel` and on `OpenAIChatModel` talking to a
local fake OpenAI-compatible server through the real SDK. Each situation (a provider
rate limiting, down, hanging, breaking a stream, refusing content) is made with the
fake's knobs on one side and the server's faults on the other."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from adapters.openai.chat import OpenAIChatModel
from adapters.openai.fake import FAKE_MODEL, ScriptedChatModel
from core.conversations.errors import (
    ContentRefusedError,
    ModelBadRequestError,
    ModelRateLimitedError,
    ModelTimeoutError,
    ModelUnavailableError,
)
from core.conversations.model import ChatDelta, ChatMessage, ChatParams, ChatUsage, Role
from core.conversations.ports import ChatModel
from tests.fakes.openai_server import FakeOpenAIServer, running_fake_openai

MAX_RETRIES = 2
PARAMS = ChatParams(max_output_tokens=50, timeout_seconds=5)
PROMPT = [
    ChatMessage(Role.SYSTEM, "You are terse."),
    ChatMessage(Role.USER, "Tell me about the sea"),
]
REPLY = "The sea is large, salty and deep."


class FakeWorld:
    """The situations, made with the scripted fake's knobs."""

    max_attempts = 1  # the fake has no retries

    def __init__(self) -> None:
        self.fake = ScriptedChatModel()
        self.model: ChatModel = self.fake

    def attempts(self) -> int:
        return len(self.fake.calls)

    def reply(self, text: str) -> None:
        self.fake.reply = text

    def at_max_output(self) -> None:
        self.fake.reply_at_max_output = True

    def rate_limited(self, retry_after: int) -> None:
        self.fake.fail_next(ModelRateLimitedError(retry_after=retry_after))

    def down(self) -> None:
        self.fake.fail_next(ModelUnavailableError())

    def hang(self) -> None:
        self.fake.latency_per_token_seconds = 30

    def slow(self, seconds_per_token: float) -> None:
        self.fake.latency_per_token_seconds = seconds_per_token

    def cut(self, after_deltas: int) -> None:
        self.fake.cut_after(after_deltas)

    def content_filter(self, after_deltas: int) -> None:
        self.fake.cut_after(after_deltas, ContentRefusedError())

    def bad_request(self) -> None:
        self.fake.fail_next(ModelBadRequestError("The prompt is too long."))


class ServerWorld:
    """The situations, made with the fake server's faults (each attempt answers one)."""

    max_attempts = MAX_RETRIES + 1

    def __init__(self, server: FakeOpenAIServer, model: OpenAIChatModel) -> None:
        self.server = server
        self.model: ChatModel = model

    def attempts(self) -> int:
        return len(self.server.requests)

    def reply(self, text: str) -> None:
        self.server.reply_text = text

    def at_max_output(self) -> None:
        self.server.reply_at_max_output = True

    def rate_limited(self, retry_after: int) -> None:
        self.server.fail_next(429, self.max_attempts, retry_after=str(retry_after))

    def down(self) -> None:
        self.server.fail_next(503, self.max_attempts, message="Overloaded.")

    def hang(self) -> None:
        self.server.hang_next(30, self.max_attempts)

    def slow(self, seconds_per_token: float) -> None:
        self.server.chunk_delay_seconds = seconds_per_token

    def cut(self, after_deltas: int) -> None:
        self.server.cut_next(after_deltas)

    def content_filter(self, after_deltas: int) -> None:
        self.server.content_filter_next(after_deltas)

    def bad_request(self) -> None:
        self.server.fail_next(400, code="context_length_exceeded", message="Too long.")


World = FakeWorld | ServerWorld


@pytest.fixture(params=["scripted", pytest.param("openai", marks=pytest.mark.integration)])
async def world(request: pytest.FixtureRequest) -> AsyncIterator[World]:
    if request.param == "scripted":
        yield FakeWorld()
        return
    with running_fake_openai() as server:
        model = OpenAIChatModel(
            base_url=server.base_url,
            api_key=server.api_key,
            timeout_seconds=10,
            max_retries=MAX_RETRIES,
            retry_backoff_seconds=0.01,
        )
        try:
            yield ServerWorld(server, model)
        finally:
            await model.close()


async def collect(
    model: ChatModel, params: ChatParams = PARAMS, messages: list[ChatMessage] = PROMPT
) -> list[ChatDelta | ChatUsage]:
    return [item async for item in model.stream(messages, FAKE_MODEL, params)]


async def collect_until_error(
    model: ChatModel, params: ChatParams = PARAMS
) -> tuple[list[ChatDelta | ChatUsage], Exception]:
    items: list[ChatDelta | ChatUsage] = []
    with pytest.raises(Exception) as raised:  # the caller checks the type
        async for item in model.stream(PROMPT, FAKE_MODEL, params):
            items.append(item)
    return items, raised.value


def text_of(items: list[ChatDelta | ChatUsage]) -> str:
    return "".join(item.text for item in items if isinstance(item, ChatDelta))


# --- answers -------------------------------------------------------------------------------


async def test_complete_returns_the_reply_and_its_usage(world: World) -> None:
    world.reply(REPLY)
    reply = await world.model.complete(PROMPT, FAKE_MODEL, PARAMS)
    assert reply.text == REPLY
    assert reply.finish_reason == "stop"
    assert reply.usage.model == FAKE_MODEL
    assert reply.usage.input_tokens > 0
    assert reply.usage.output_tokens == len(REPLY.split())


async def test_a_stream_yields_the_same_reply_then_exactly_one_usage_last(world: World) -> None:
    world.reply(REPLY)
    complete = await world.model.complete(PROMPT, FAKE_MODEL, PARAMS)
    items = await collect(world.model)
    assert all(isinstance(item, ChatDelta) and item.text for item in items[:-1])
    assert len(items) > 2
    assert text_of(items) == complete.text
    assert items[-1] == complete.usage
    assert items[-1].output_tokens == len(items) - 1


async def test_the_usage_counts_the_prompt(world: World) -> None:
    short = await world.model.complete(PROMPT[1:], FAKE_MODEL, PARAMS)
    long = await world.model.complete(PROMPT, FAKE_MODEL, PARAMS)
    assert 0 < short.usage.input_tokens < long.usage.input_tokens


async def test_without_a_scripted_reply_the_answer_depends_on_the_prompt(world: World) -> None:
    reply = await world.model.complete(PROMPT, FAKE_MODEL, PARAMS)
    assert "Tell me about the sea" in reply.text


@pytest.mark.parametrize("streamed", [False, True])
async def test_the_reply_stops_at_max_output_tokens(world: World, streamed: bool) -> None:
    world.reply(" ".join(["word"] * 40))
    params = ChatParams(max_output_tokens=7, timeout_seconds=5)
    if streamed:
        items = await collect(world.model, params)
        assert len(items) == 8
        usage = items[-1]
        assert isinstance(usage, ChatUsage)
    else:
        reply = await world.model.complete(PROMPT, FAKE_MODEL, params)
        assert reply.finish_reason == "length"
        usage = reply.usage
    assert usage.output_tokens == 7


async def test_a_reply_at_max_output_has_exactly_max_output_tokens(world: World) -> None:
    world.at_max_output()
    params = ChatParams(max_output_tokens=12, timeout_seconds=5)
    reply = await world.model.complete(PROMPT, FAKE_MODEL, params)
    assert reply.usage.output_tokens == 12
    items = await collect(world.model, params)
    assert len(items) == 13
    assert items[-1] == reply.usage


async def test_concurrent_calls_each_get_their_own_reply(world: World) -> None:
    prompts = [[ChatMessage(Role.USER, f"question number {n}")] for n in range(12)]
    results = await asyncio.gather(*(collect(world.model, messages=p) for p in prompts))
    for n, items in enumerate(results):
        assert f"question number {n}" in text_of(items)
        assert isinstance(items[-1], ChatUsage)


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("streamed", [False, True])
async def test_the_providers_rate_limit_is_model_rate_limited(world: World, streamed: bool) -> None:
    world.rate_limited(retry_after=7)  # longer than the call may last: raised at once
    started = time.monotonic()
    with pytest.raises(ModelRateLimitedError) as raised:
        if streamed:
            await collect(world.model)
        else:
            await world.model.complete(PROMPT, FAKE_MODEL, PARAMS)
    assert raised.value.retry_after == 7
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_provider_that_stays_down_is_unavailable_after_the_retries(
    world: World, streamed: bool
) -> None:
    world.down()
    with pytest.raises(ModelUnavailableError):
        if streamed:
            await collect(world.model)
        else:
            await world.model.complete(PROMPT, FAKE_MODEL, PARAMS)
    assert world.attempts() == world.max_attempts


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_hanging_provider_times_out_within_about_the_timeout(
    world: World, streamed: bool
) -> None:
    world.hang()
    params = ChatParams(max_output_tokens=50, timeout_seconds=0.5)
    started = time.monotonic()
    with pytest.raises(ModelTimeoutError):
        if streamed:
            await collect(world.model, params)
        else:
            await world.model.complete(PROMPT, FAKE_MODEL, params)
    assert 0.45 <= time.monotonic() - started < 1.5


async def test_a_slow_stream_ends_at_the_deadline_with_what_it_yielded(world: World) -> None:
    world.reply(" ".join(["slow"] * 40))
    world.slow(0.05)
    params = ChatParams(max_output_tokens=50, timeout_seconds=0.6)
    started = time.monotonic()
    items, error = await collect_until_error(world.model, params)
    assert isinstance(error, ModelTimeoutError)
    assert time.monotonic() - started < 1.5
    assert 0 < len(items) < 40
    assert all(isinstance(item, ChatDelta) for item in items)


async def test_a_stream_cut_after_the_first_delta_is_unavailable_and_keeps_the_deltas(
    world: World,
) -> None:
    world.reply(REPLY)
    world.cut(after_deltas=3)
    items, error = await collect_until_error(world.model)
    assert isinstance(error, ModelUnavailableError)
    assert text_of(items) == "".join(REPLY.split(" ")[i] + " " for i in range(3))
    assert all(isinstance(item, ChatDelta) for item in items)


@pytest.mark.parametrize("after_deltas", [0, 2])
async def test_a_content_filter_finish_is_content_refused(world: World, after_deltas: int) -> None:
    world.reply(REPLY)
    world.content_filter(after_deltas)
    items, error = await collect_until_error(world.model)
    assert isinstance(error, ContentRefusedError)
    assert len(items) == after_deltas
    world.content_filter(0)
    with pytest.raises(ContentRefusedError):
        await world.model.complete(PROMPT, FAKE_MODEL, PARAMS)


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_refused_request_is_a_bad_request(world: World, streamed: bool) -> None:
    world.bad_request()
    with pytest.raises(ModelBadRequestError):
        if streamed:
            await collect(world.model)
        else:
            await world.model.complete(PROMPT, FAKE_MODEL, PARAMS)
    assert world.attempts() == 1  # not retried


async def test_after_an_error_the_next_call_is_answered(world: World) -> None:
    world.down()
    with pytest.raises(ModelUnavailableError):
        await world.model.complete(PROMPT, FAKE_MODEL, PARAMS)
    world.reply(REPLY)
    assert text_of(await collect(world.model)) == REPLY
