"""`ScriptedChatModel` beyond the contract suite: its documented token counts, its script
and knobs, and concurrent use from tasks and threads."""

from __future__ import annotations

import asyncio
import threading

import pytest

from adapters.openai.fake import (
    FAKE_MODEL,
    ScriptedChatModel,
    count_prompt_tokens,
    split_tokens,
)
from core.conversations.errors import (
    ContentRefusedError,
    ModelTimeoutError,
    ModelUnavailableError,
)
from core.conversations.model import ChatDelta, ChatMessage, ChatParams, ChatUsage, Role

PARAMS = ChatParams(max_output_tokens=100, timeout_seconds=5)
HELLO = [ChatMessage(Role.USER, "hello")]


async def collect(
    model: ScriptedChatModel,
    messages: list[ChatMessage] = HELLO,
    params: ChatParams = PARAMS,
) -> list[ChatDelta | ChatUsage]:
    return [item async for item in model.stream(messages, FAKE_MODEL, params)]


def test_the_default_model_name() -> None:
    assert FAKE_MODEL == "portico-fake"


@pytest.mark.parametrize(
    ("contents", "tokens"),
    [([""], 4), (["abcd"], 5), (["abcde"], 6), (["a" * 40, "b"], 14 + 5), ([], 0)],
)
async def test_input_tokens_are_a_quarter_of_the_characters_rounded_up_plus_4_a_message(
    contents: list[str], tokens: int
) -> None:
    messages = [ChatMessage(Role.USER, content) for content in contents]
    assert count_prompt_tokens(messages) == tokens
    reply = await ScriptedChatModel().complete(messages, FAKE_MODEL, PARAMS)
    assert reply.usage.input_tokens == tokens


@pytest.mark.parametrize(
    "text", ["", "one", "one two", "  leading", "trailing  ", "lines\nand\ttabs \n", " "]
)
def test_a_text_splits_into_tokens_that_join_back_exactly(text: str) -> None:
    tokens = split_tokens(text)
    assert "".join(tokens) == text
    assert all(tokens)


def test_each_word_is_one_token() -> None:
    assert split_tokens("The sea, deep.") == ["The ", "sea, ", "deep."]


async def test_by_default_it_echoes_the_last_user_message() -> None:
    model = ScriptedChatModel()
    prompt = [
        ChatMessage(Role.USER, "first"),
        ChatMessage(Role.ASSISTANT, "an answer"),
        ChatMessage(Role.USER, "second"),
    ]
    reply = await model.complete(prompt, FAKE_MODEL, PARAMS)
    assert reply.text == "This is a scripted reply. You said: second"
    assert reply.finish_reason == "stop"
    alone = await model.complete([ChatMessage(Role.SYSTEM, "x")], FAKE_MODEL, PARAMS)
    assert alone.text.endswith("You said: (nothing)")


async def test_queued_replies_come_in_order_then_the_fixed_reply() -> None:
    model = ScriptedChatModel(reply="fixed")
    model.queue("first", ["sec", "ond"])
    model.queue("third")
    assert (await model.complete(HELLO, FAKE_MODEL, PARAMS)).text == "first"
    assert await collect(model) == [ChatDelta("sec"), ChatDelta("ond"), ChatUsage(FAKE_MODEL, 6, 2)]
    assert (await model.complete(HELLO, FAKE_MODEL, PARAMS)).text == "third"
    assert (await model.complete(HELLO, FAKE_MODEL, PARAMS)).text == "fixed"


async def test_script_replaces_what_is_queued() -> None:
    model = ScriptedChatModel(reply="fixed")
    model.queue("old one", "old two")
    model.script("new")
    assert (await model.complete(HELLO, FAKE_MODEL, PARAMS)).text == "new"
    assert (await model.complete(HELLO, FAKE_MODEL, PARAMS)).text == "fixed"


def test_scripted_deltas_are_not_empty() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        ScriptedChatModel().queue(["a", ""])


async def test_a_failure_comes_before_any_token_and_keeps_the_queued_reply() -> None:
    model = ScriptedChatModel()
    model.queue("kept")
    model.fail_next(ModelUnavailableError(), times=2)
    stream = model.stream(HELLO, FAKE_MODEL, PARAMS)
    with pytest.raises(ModelUnavailableError):
        await anext(stream)
    with pytest.raises(ModelUnavailableError):
        await model.complete(HELLO, FAKE_MODEL, PARAMS)
    assert (await model.complete(HELLO, FAKE_MODEL, PARAMS)).text == "kept"


async def test_a_cut_after_as_many_deltas_as_the_reply_has_withholds_the_usage() -> None:
    model = ScriptedChatModel(reply="a b")
    model.cut_after(2, ContentRefusedError())
    items: list[ChatDelta | ChatUsage] = []
    with pytest.raises(ContentRefusedError):
        async for item in model.stream(HELLO, FAKE_MODEL, PARAMS):
            items.append(item)
    assert items == [ChatDelta("a "), ChatDelta("b")]
    model.cut_after(1)
    with pytest.raises(ModelUnavailableError):
        await model.complete(HELLO, FAKE_MODEL, PARAMS)
    assert (await model.complete(HELLO, FAKE_MODEL, PARAMS)).text == "a b"


async def test_a_reply_at_max_output_is_padded_or_cut_to_exactly_the_limit() -> None:
    model = ScriptedChatModel(reply="short", reply_at_max_output=True)
    params = ChatParams(max_output_tokens=4, timeout_seconds=5)
    reply = await model.complete(HELLO, FAKE_MODEL, params)
    assert reply.text == "short lorem ipsum dolor"
    assert (reply.usage.output_tokens, reply.finish_reason) == (4, "length")
    model.queue("a b c d e f")
    assert (await model.complete(HELLO, FAKE_MODEL, params)).text == "a b c d "


async def test_a_call_with_no_time_left_times_out() -> None:
    model = ScriptedChatModel()
    params = ChatParams(max_output_tokens=10, timeout_seconds=0)
    with pytest.raises(ModelTimeoutError):
        await model.complete(HELLO, FAKE_MODEL, params)
    with pytest.raises(ModelTimeoutError):
        await collect(model, params=params)


async def test_calls_are_recorded() -> None:
    model = ScriptedChatModel()
    params = ChatParams(max_output_tokens=3, timeout_seconds=2, temperature=0.5)
    await model.complete(HELLO, "some-model", params)
    await collect(model)
    assert [(c.messages, c.model, c.params, c.streamed) for c in model.calls] == [
        (tuple(HELLO), "some-model", params, False),
        (tuple(HELLO), FAKE_MODEL, PARAMS, True),
    ]


def test_concurrent_calls_from_threads_each_take_one_scripted_reply() -> None:
    model = ScriptedChatModel(reply="unscripted")
    replies = [f"reply {n}" for n in range(200)]
    model.queue(*replies)
    seen: list[str] = []
    lock = threading.Lock()

    async def calls() -> None:
        async def one() -> None:
            text = "".join(i.text for i in await collect(model) if isinstance(i, ChatDelta))
            with lock:
                seen.append(text)

        await asyncio.gather(*(one() for _ in range(50)))

    threads = [threading.Thread(target=asyncio.run, args=(calls(),)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seen) == sorted(replies)
    assert len(model.calls) == 200
