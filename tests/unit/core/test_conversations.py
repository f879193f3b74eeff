"""Conversations on the in-memory world with the scripted model: ownership, sending with
exact credits, failures that charge nothing, one model call per client message id,
concurrency against the balance, streams read to the end, history trimming, usage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

import pytest

from adapters.openai.fake import ScriptedChatModel
from core.billing.errors import FeatureNotInTierError, InsufficientCreditsError, LimitReachedError
from core.billing.model import LimitSpec, Period, Tier, model_feature
from core.conversations.errors import (
    ConversationNotFoundError,
    ModelUnavailableError,
    PriceNotFoundError,
    ReplyFailedError,
)
from core.conversations.model import (
    ChatDelta,
    ChatMessage,
    ChatParams,
    ChatUsage,
    MessageState,
    ModelPrice,
    Role,
)
from core.conversations.repeats import SendResult
from core.shared.errors import RuleViolationError
from tests.unit.core.conversations_world import ConversationsWorld

MAX_OUTPUT = 50


@pytest.fixture
async def world() -> ConversationsWorld:
    return await ConversationsWorld(llm={"max_output_tokens": MAX_OUTPUT}).seeded()


async def test_a_reply_is_saved_and_charged_by_the_reported_usage(
    world: ConversationsWorld,
) -> None:
    user = await world.funded()
    conversation = await world.conversations.create(user, title="Hello")
    assert conversation.model == "portico-fake"
    result = await world.messages.send(user, conversation.id, "Hello there")  # type: ignore[arg-type]
    reply = result.reply
    assert reply.state is MessageState.COMPLETED and reply.role is Role.ASSISTANT
    assert reply.content.startswith("This is a scripted reply. You said: Hello there")
    price = await world.prices.current("portico-fake")
    assert reply.cost == price.cost(reply.input_tokens, reply.output_tokens) > 0
    assert reply.credits_charged == -(-reply.cost // 1000)
    assert user.id is not None
    assert await world.credits.balance(user.id) == 10_000 - reply.credits_charged
    await world.assert_ledger_exact(user)
    stored = await world.all_messages(conversation.id)  # type: ignore[arg-type]
    assert [(m.role, m.state) for m in stored] == [
        (Role.USER, MessageState.COMPLETED),
        (Role.ASSISTANT, MessageState.COMPLETED),
    ]


async def test_another_users_conversation_is_not_found(world: ConversationsWorld) -> None:
    owner, stranger = await world.funded("ada"), await world.funded("bob")
    conversation = await world.conversations.create(owner)
    assert conversation.id is not None
    for attempt in (
        world.conversations.get(stranger, conversation.id),
        world.messages.send(stranger, conversation.id, "hi"),
    ):
        with pytest.raises(ConversationNotFoundError):
            await attempt
    assert world.model.calls == []


async def test_without_credits_nothing_is_saved_or_called(world: ConversationsWorld) -> None:
    user = await world.funded(credits=0)
    conversation = await world.conversations.create(user)
    with pytest.raises(InsufficientCreditsError):
        await world.messages.send(user, conversation.id, "hi")  # type: ignore[arg-type]
    assert world.model.calls == []
    assert await world.all_messages(conversation.id) == []  # type: ignore[arg-type]


async def test_a_model_failure_charges_nothing_and_marks_the_reply_failed(
    world: ConversationsWorld,
) -> None:
    user = await world.funded()
    conversation = await world.conversations.create(user)
    world.model.fail_next(ModelUnavailableError())
    with pytest.raises(ModelUnavailableError):
        await world.messages.send(user, conversation.id, "hi", client_message_id="m1")  # type: ignore[arg-type]
    assert user.id is not None and await world.credits.balance(user.id) == 10_000
    await world.assert_ledger_exact(user)
    *_, reply = await world.all_messages(conversation.id)  # type: ignore[arg-type]
    assert reply.state is MessageState.FAILED and reply.error == "model_unavailable"
    with pytest.raises(ReplyFailedError):  # the first result stands
        await world.messages.send(user, conversation.id, "hi", client_message_id="m1")  # type: ignore[arg-type]


async def test_a_repeated_client_message_id_returns_the_first_result_and_charges_once(
    world: ConversationsWorld,
) -> None:
    user = await world.funded()
    conversation = await world.conversations.create(user)
    assert conversation.id is not None
    results = await asyncio.gather(
        *(
            world.messages.send(user, conversation.id, "hi", client_message_id="same")
            for _ in range(10)
        )
    )
    assert len(world.model.calls) == 1
    assert {r.reply.id for r in results} == {results[0].reply.id}
    assert {r.reply.content for r in results} == {results[0].reply.content}
    assert user.id is not None
    charged = results[0].reply.credits_charged
    assert await world.credits.balance(user.id) == 10_000 - charged
    await world.assert_ledger_exact(user)


async def test_100_concurrent_sends_against_50_worst_cases_answer_exactly_50() -> None:
    model = ScriptedChatModel(reply_at_max_output=True)
    world = await ConversationsWorld(model, llm={"max_output_tokens": MAX_OUTPUT}).seeded()
    # Output only costs, so a reply at the maximum costs exactly its reservation.
    await world.prices.set_price(
        ModelPrice("portico-fake", 0, 20_000_000, effective_from=world.clock.now() - timedelta(1))
    )
    worst = -(-(MAX_OUTPUT * 20_000_000) // 1_000_000 // 1000)  # credits per reply
    unlimited = Tier(
        code="unlimited",
        name="Unlimited",
        features=frozenset({"conversations", "model:portico-fake"}),
        limits={
            "messages": LimitSpec(10_000, Period.DAY),
            "tokens": LimitSpec(10**9, Period.MONTH),
        },
    )
    await world.catalog.create_tier(unlimited)
    user = await world.funded(credits=50 * worst)
    assert user.id is not None
    await world.plans.change_tier(user.id, "unlimited")
    user = await world.reload(user)
    conversation = await world.conversations.create(user)
    assert conversation.id is not None
    outcomes = await asyncio.gather(
        *(world.messages.send(user, conversation.id, f"message {n}") for n in range(100)),
        return_exceptions=True,
    )
    answered = [o for o in outcomes if isinstance(o, SendResult)]
    refused = [o for o in outcomes if isinstance(o, InsufficientCreditsError)]
    assert (len(answered), len(refused)) == (50, 50)
    assert all(r.reply.credits_charged == worst for r in answered)
    assert await world.credits.balance(user.id) == 0
    await world.assert_ledger_exact(user)


async def test_sends_racing_past_the_daily_limit_leave_nothing_of_the_refused_ones(
    world: ConversationsWorld,
) -> None:
    # Every send passes the check before its unit counts the message; the count itself
    # refuses the extra ones, and their unit (credits held, both messages) is undone.
    three_a_day = Tier(
        code="three",
        name="Three a day",
        features=frozenset({"conversations", "model:portico-fake"}),
        limits={"messages": LimitSpec(3, Period.DAY), "tokens": LimitSpec(10**9, Period.MONTH)},
    )
    await world.catalog.create_tier(three_a_day)
    user = await world.funded()
    assert user.id is not None
    await world.plans.change_tier(user.id, "three")
    user = await world.reload(user)
    conversation = await world.conversations.create(user)
    assert conversation.id is not None
    outcomes = await asyncio.gather(
        *(world.messages.send(user, conversation.id, f"message {n}") for n in range(10)),
        return_exceptions=True,
    )
    answered = [o for o in outcomes if isinstance(o, SendResult)]
    refused = [o for o in outcomes if isinstance(o, LimitReachedError)]
    assert (len(answered), len(refused)) == (3, 7)
    assert len(world.model.calls) == 3
    stored = await world.all_messages(conversation.id)
    assert len(stored) == 6 and all(m.state is MessageState.COMPLETED for m in stored)
    charged = sum(r.reply.credits_charged for r in answered)
    assert await world.credits.balance(user.id) == 10_000 - charged
    await world.assert_ledger_exact(user)


class BurstModel(ScriptedChatModel):
    """Yields every delta of a reply without waiting in between, as a fast model's
    stream does when one network read holds many chunks; counts what it yielded."""

    def __init__(self) -> None:
        super().__init__()
        self.yielded = 0

    async def stream(  # type: ignore[override]
        self, messages: Sequence[ChatMessage], model: str, params: ChatParams
    ) -> AsyncIterator[ChatDelta | ChatUsage]:
        for word in ("one ", "two ", "three ", "four ", "five"):
            self.yielded += 1
            yield ChatDelta(word)
        yield ChatUsage(model, 3, 5)


async def test_a_delta_reaches_the_stream_before_the_model_yields_the_next() -> None:
    model = BurstModel()
    world = await ConversationsWorld(model, llm={"max_output_tokens": MAX_OUTPUT}).seeded()
    user = await world.funded()
    conversation = await world.conversations.create(user)
    assert conversation.id is not None
    events = await world.messages.stream(user, conversation.id, "count")
    seen = []
    async for item in events:
        if isinstance(item, ChatDelta):
            seen.append((item.text, model.yielded))
    assert seen == [("one ", 1), ("two ", 2), ("three ", 3), ("four ", 4), ("five", 5)]


async def test_a_stream_read_by_nobody_after_the_third_delta_is_saved_whole_and_charged_once(
    world: ConversationsWorld,
) -> None:
    user = await world.funded()
    conversation = await world.conversations.create(user)
    world.model.queue("one two three four five six seven")
    events = await world.messages.stream(user, conversation.id, "count")  # type: ignore[arg-type]
    seen = []
    async for item in events:
        assert isinstance(item, ChatDelta)
        seen.append(item.text)
        if len(seen) == 3:
            break  # the client went away
    await events.aclose()  # type: ignore[attr-defined]
    for _ in range(100):  # the reply is finished by a task nobody awaits
        *_, reply = await world.all_messages(conversation.id)  # type: ignore[arg-type]
        if reply.state is not MessageState.RESERVED:
            break
        await asyncio.sleep(0.01)
    assert reply.state is MessageState.COMPLETED
    assert reply.content == "one two three four five six seven"
    assert reply.output_tokens == 7 and reply.credits_charged > 0
    assert user.id is not None
    assert await world.credits.balance(user.id) == 10_000 - reply.credits_charged
    await world.assert_ledger_exact(user)


async def test_a_stream_gives_deltas_then_the_result(world: ConversationsWorld) -> None:
    user = await world.funded()
    conversation = await world.conversations.create(user)
    world.model.queue("alpha beta")
    items = [i async for i in await world.messages.stream(user, conversation.id, "x")]  # type: ignore[arg-type]
    *deltas, done = items
    assert [d.text for d in deltas if isinstance(d, ChatDelta)] == ["alpha ", "beta"]
    assert isinstance(done, SendResult) and done.reply.content == "alpha beta"


async def test_a_stream_cut_midway_is_failed_and_charges_nothing(world: ConversationsWorld) -> None:
    user = await world.funded()
    conversation = await world.conversations.create(user)
    world.model.queue("one two three four")
    world.model.cut_after(2)
    events = await world.messages.stream(user, conversation.id, "x")  # type: ignore[arg-type]
    with pytest.raises(ModelUnavailableError):
        async for _ in events:
            pass
    *_, reply = await world.all_messages(conversation.id)  # type: ignore[arg-type]
    assert reply.state is MessageState.FAILED
    assert user.id is not None and await world.credits.balance(user.id) == 10_000
    await world.assert_ledger_exact(user)


async def test_the_model_and_the_limits_are_entitlements(world: ConversationsWorld) -> None:
    user = await world.funded()
    other = await world.conversations.create(user, model="gpt-4o")
    with pytest.raises(FeatureNotInTierError):
        await world.messages.send(user, other.id, "hi")  # type: ignore[arg-type]
    await world.prices.set_price(ModelPrice("gpt-4o", 1, 1, effective_from=world.clock.now()))
    conversation = await world.conversations.create(user)
    assert conversation.id is not None
    for n in range(50):  # the free tier's messages a day
        await world.messages.send(user, conversation.id, f"m{n}")
    with pytest.raises(LimitReachedError):
        await world.messages.send(user, conversation.id, "one too many")
    assert len(world.model.calls) == 50


async def test_a_model_without_a_price_cannot_be_used(world: ConversationsWorld) -> None:
    user = await world.funded()
    await world.catalog.update_tier(
        (await world.catalog.tier("free")).copy(
            features=frozenset({"conversations", "model:portico-fake", "model:priceless"})
        )
    )
    user = await world.reload(user)
    conversation = await world.conversations.create(user, model="priceless")
    with pytest.raises(PriceNotFoundError):
        await world.messages.send(user, conversation.id, "hi")  # type: ignore[arg-type]
    assert world.model.calls == []


async def test_history_is_trimmed_to_the_budget_newest_first(world: ConversationsWorld) -> None:
    small = await ConversationsWorld(
        llm={"max_output_tokens": MAX_OUTPUT, "history_token_budget": 100}
    ).seeded()
    user = await small.funded()
    conversation = await small.conversations.create(user, system_prompt="Be brief.")
    assert conversation.id is not None
    for n in range(10):
        await small.messages.send(user, conversation.id, f"message number {n} " + "x" * 60)
    last = small.model.calls[-1].messages
    assert last[0].role is Role.SYSTEM and last[-1].content.startswith("message number 9")
    assert len(last) < 21  # older turns left out
    assert sum(-(-len(m.content) // 3) + 4 for m in last) <= 100 + 40


async def test_usage_sums_replies_per_model_and_per_day(world: ConversationsWorld) -> None:
    user = await world.funded()
    conversation = await world.conversations.create(user)
    assert conversation.id is not None
    first = await world.messages.send(user, conversation.id, "one")
    world.clock.advance(86_400)
    second = await world.messages.send(user, conversation.id, "two")
    since, until = world.clock.now() - timedelta(days=2), world.clock.now() + timedelta(1)
    (by_model,) = await world.conversations.usage(user, since=since, until=until)
    assert by_model.group == "portico-fake" and by_model.messages == 2
    assert by_model.credits_charged == first.reply.credits_charged + second.reply.credits_charged
    days = await world.conversations.usage(user, since=since, until=until, group_by="day")
    assert [d.messages for d in days] == [1, 1]


async def test_a_model_name_is_one_a_feature_can_name(world: ConversationsWorld) -> None:
    """Each model is an entitlement (`model:<name>`), so a conversation takes only names
    that feature can spell: refused at creation, never at the first message."""
    user = await world.funded()
    for name in ("meta-llama/Llama-3-8B-Instruct", "llama3:8b", "gpt-4o-mini"):
        conversation = await world.conversations.create(user, model=name)
        assert model_feature(conversation.model) == f"model:{name.lower()}"
    for name in ("gpt 4", "modèle", "-leading-dash", "a" * 201, "émoji🙂"):
        with pytest.raises(RuleViolationError):
            await world.conversations.create(user, model=name)
