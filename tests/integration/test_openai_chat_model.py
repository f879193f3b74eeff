"""`OpenAIChatModel` on the real SDK against the local fake OpenAI-compatible server: what
it sends, retries only before the first token, timeouts of an attempt and of a call, and
the errors the contract suite does not reach."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import cast

import pytest

from adapters.openai.chat import OpenAIChatModel
from core.conversations.errors import (
    ContentRefusedError,
    ModelBadRequestError,
    ModelTimeoutError,
    ModelUnavailableError,
)
from core.conversations.model import ChatDelta, ChatMessage, ChatParams, ChatUsage, Role
from tests.fakes.openai_server import (
    FakeOpenAIServer,
    fake_openai,  # noqa: F401 (the fixture, requested by name)
)

pytestmark = pytest.mark.integration

MODEL = "gpt-test"
PARAMS = ChatParams(max_output_tokens=50, timeout_seconds=5)
PROMPT = [ChatMessage(Role.SYSTEM, "Be brief."), ChatMessage(Role.USER, "Hello there")]
REPLY = "one two three four five six"


@pytest.fixture
def server(request: pytest.FixtureRequest) -> FakeOpenAIServer:
    found: FakeOpenAIServer = request.getfixturevalue("fake_openai")
    found.reply_text = REPLY
    return found


@pytest.fixture
async def model(server: FakeOpenAIServer) -> AsyncIterator[OpenAIChatModel]:
    chat = build(server)
    try:
        yield chat
    finally:
        await chat.close()


def build(server: FakeOpenAIServer, **options: object) -> OpenAIChatModel:
    settings: dict[str, object] = {
        "base_url": server.base_url,
        "api_key": server.api_key,
        "timeout_seconds": 5.0,
        "max_retries": 2,
        "retry_backoff_seconds": 0.01,
    }
    settings.update(options)
    return OpenAIChatModel(**settings)  # type: ignore[arg-type]


async def collect(
    chat: OpenAIChatModel, params: ChatParams = PARAMS
) -> tuple[list[ChatDelta | ChatUsage], Exception | None]:
    items: list[ChatDelta | ChatUsage] = []
    try:
        async for item in chat.stream(PROMPT, MODEL, params):
            items.append(item)
    except Exception as error:
        return items, error
    return items, None


def text_of(items: list[ChatDelta | ChatUsage]) -> str:
    return "".join(item.text for item in items if isinstance(item, ChatDelta))


# --- what is sent --------------------------------------------------------------------------


async def test_a_stream_asks_for_usage_and_sends_the_prompt_and_limits(
    model: OpenAIChatModel, server: FakeOpenAIServer
) -> None:
    await collect(model, ChatParams(max_output_tokens=40, timeout_seconds=5, temperature=0.2))
    [sent] = server.requests
    assert sent.authorization == f"Bearer {server.api_key}"
    assert sent.body["model"] == MODEL
    assert sent.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello there"},
    ]
    assert sent.body["stream"] is True
    assert sent.body["stream_options"] == {"include_usage": True}
    assert sent.body["max_tokens"] == 40
    assert "max_completion_tokens" not in sent.body
    assert sent.body["temperature"] == 0.2


async def test_complete_sends_no_temperature_unless_set_and_the_chosen_limit_name(
    server: FakeOpenAIServer,
) -> None:
    chat = build(server, token_limit_parameter="max_completion_tokens")
    try:
        reply = await chat.complete(PROMPT, MODEL, PARAMS)
    finally:
        await chat.close()
    assert reply.text == REPLY
    [sent] = server.requests
    assert sent.body.get("stream") in (None, False)
    assert "temperature" not in sent.body
    assert "max_tokens" not in sent.body
    assert sent.body["max_completion_tokens"] == 50


# --- retries only before the first token ---------------------------------------------------


async def test_a_server_error_then_an_answer_is_one_reply_from_two_requests(
    model: OpenAIChatModel, server: FakeOpenAIServer
) -> None:
    server.fail_next(500)
    reply = await model.complete(PROMPT, MODEL, PARAMS)
    assert reply.text == REPLY
    assert len(server.requests) == 2
    server.fail_next(502)
    items, error = await collect(model)
    assert error is None
    assert text_of(items) == REPLY
    assert len(server.requests) == 4


async def test_a_stream_cut_after_the_first_token_is_not_retried(
    model: OpenAIChatModel, server: FakeOpenAIServer
) -> None:
    server.cut_next(after_deltas=1)
    items, error = await collect(model)
    assert isinstance(error, ModelUnavailableError)
    assert items == [ChatDelta("one ")]
    assert len(server.requests) == 1


async def test_a_stream_cut_before_its_first_token_is_retried(
    model: OpenAIChatModel, server: FakeOpenAIServer
) -> None:
    server.cut_next(after_deltas=0)
    items, error = await collect(model)
    assert error is None
    assert text_of(items) == REPLY
    assert isinstance(items[-1], ChatUsage)
    assert len(server.requests) == 2


async def test_an_answer_cut_off_is_retried_by_complete(
    model: OpenAIChatModel, server: FakeOpenAIServer
) -> None:
    server.cut_next(after_deltas=0)
    assert (await model.complete(PROMPT, MODEL, PARAMS)).text == REPLY
    assert len(server.requests) == 2


async def test_without_retries_one_failure_is_final(server: FakeOpenAIServer) -> None:
    chat = build(server, max_retries=0)
    try:
        server.fail_next(503)
        with pytest.raises(ModelUnavailableError):
            await chat.complete(PROMPT, MODEL, PARAMS)
    finally:
        await chat.close()
    assert len(server.requests) == 1


async def test_a_rate_limit_waits_the_servers_retry_after_then_retries(
    model: OpenAIChatModel, server: FakeOpenAIServer
) -> None:
    server.fail_next(429, retry_after="0.4")
    started = time.monotonic()
    reply = await model.complete(PROMPT, MODEL, PARAMS)
    assert reply.text == REPLY
    assert time.monotonic() - started >= 0.4
    assert len(server.requests) == 2


async def test_a_retry_after_past_the_deadline_is_not_waited_for(
    model: OpenAIChatModel, server: FakeOpenAIServer
) -> None:
    server.fail_next(503, retry_after="30")
    started = time.monotonic()
    with pytest.raises(ModelUnavailableError) as raised:
        await model.complete(PROMPT, MODEL, PARAMS)
    assert time.monotonic() - started < 1
    assert raised.value.retry_after == 30
    assert len(server.requests) == 1


# --- timeouts ------------------------------------------------------------------------------


async def test_an_attempt_that_hangs_is_cut_at_its_timeout_and_retried(
    server: FakeOpenAIServer,
) -> None:
    chat = build(server, timeout_seconds=0.3)
    server.hang_next(3)
    started = time.monotonic()
    try:
        items, error = await collect(chat)
    finally:
        await chat.close()
    assert error is None
    assert text_of(items) == REPLY
    assert len(server.requests) == 2
    assert time.monotonic() - started < 2


async def test_a_stream_stalling_after_its_first_token_times_out_without_a_retry(
    server: FakeOpenAIServer,
) -> None:
    chat = build(server, timeout_seconds=0.3)
    server.hang_next(3, after_deltas=2)
    try:
        items, error = await collect(chat)
    finally:
        await chat.close()
    assert isinstance(error, ModelTimeoutError)
    assert text_of(items) == "one two "
    assert len(server.requests) == 1


# --- errors --------------------------------------------------------------------------------


async def test_a_server_that_reports_no_usage_fails_the_call(
    model: OpenAIChatModel, server: FakeOpenAIServer
) -> None:
    server.omit_usage = True
    items, error = await collect(model)
    assert isinstance(error, ModelUnavailableError)
    assert "no usage" in error.detail
    assert text_of(items) == REPLY  # the deltas came; only the usage is missing
    with pytest.raises(ModelUnavailableError):
        await model.complete(PROMPT, MODEL, PARAMS)
    assert len(server.requests) == 2  # neither was retried


@pytest.mark.parametrize(
    ("status", "code"),
    [(401, "invalid_api_key"), (403, "unsupported_country"), (429, "insufficient_quota")],
)
async def test_a_refused_account_is_unavailable_logged_and_not_retried(
    model: OpenAIChatModel,
    server: FakeOpenAIServer,
    caplog: pytest.LogCaptureFixture,
    status: int,
    code: str,
) -> None:
    server.fail_next(status, code=code, message="No.")
    with (
        caplog.at_level(logging.ERROR, logger="adapters.openai.errors"),
        pytest.raises(ModelUnavailableError),
    ):
        await model.complete(PROMPT, MODEL, PARAMS)
    assert len(server.requests) == 1
    assert any("check the API key" in record.getMessage() for record in caplog.records)


async def test_a_wrong_api_key_is_unavailable(server: FakeOpenAIServer) -> None:
    chat = build(server, api_key="sk-wrong")
    try:
        items, error = await collect(chat)
    finally:
        await chat.close()
    assert isinstance(error, ModelUnavailableError)
    assert items == []
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("status", "code", "message", "expected"),
    [
        (404, "model_not_found", "The model does not exist.", ModelBadRequestError),
        (422, None, "Unprocessable.", ModelBadRequestError),
        (400, None, "Your request was rejected by our content policy.", ContentRefusedError),
        (400, "content_filter", "Filtered.", ContentRefusedError),
        (409, None, "Conflict.", ModelUnavailableError),
    ],
)
async def test_statuses_map_to_core_errors(
    model: OpenAIChatModel,
    server: FakeOpenAIServer,
    status: int,
    code: str | None,
    message: str,
    expected: type[Exception],
) -> None:
    server.fail_next(status, 3, code=code, message=message)
    items, error = await collect(model)
    assert type(error) is expected
    assert items == []


# --- the consumer --------------------------------------------------------------------------


async def test_a_consumer_that_stops_or_is_cancelled_leaves_the_model_usable(
    model: OpenAIChatModel, server: FakeOpenAIServer
) -> None:
    server.chunk_delay_seconds = 0.05
    # The adapter's stream is an async generator: a consumer may close it early.
    stream = cast(AsyncGenerator[ChatDelta | ChatUsage], model.stream(PROMPT, MODEL, PARAMS))
    assert await anext(stream) == ChatDelta("one ")
    await stream.aclose()

    async def consume() -> None:
        async for _ in model.stream(PROMPT, MODEL, PARAMS):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    server.chunk_delay_seconds = 0
    items, error = await collect(model)
    assert error is None
    assert text_of(items) == REPLY
