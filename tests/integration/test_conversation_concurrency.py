"""Sending messages concurrently on Postgres, through the runtime the server builds (SQL
repositories, row locks, the reservation ledger): 100 sends against a balance of 50
worst cases answer exactly 50; 10 sends with one client message id call the model once
and charge once. The balance is the sum of the ledger and nothing is left reserved."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from dependency_injector import providers
from sqlalchemy import event
from sqlalchemy.engine import Engine

from adapters.openai.fake import ScriptedChatModel
from bench.floors import SEND_READS, SEND_WRITES
from core.billing.catalog import CatalogService
from core.billing.credits import CreditService
from core.billing.errors import InsufficientCreditsError
from core.billing.model import LimitSpec, Period, ReservationStatus, Tier
from core.billing.plans import PlanService
from core.billing.ports import BillingUnitOfWorkFactory
from core.conversations.conversations import ConversationService
from core.conversations.model import ModelPrice
from core.conversations.prices import PriceService
from core.conversations.repeats import SendResult
from core.conversations.sending import MessageService
from core.identity.model import User
from core.identity.service import AccountService
from entrypoints.bootstrap.container import build_container
from entrypoints.bootstrap.runtime import Runtime, start_runtime
from entrypoints.bootstrap.settings import Settings

pytestmark = pytest.mark.integration

MAX_OUTPUT = 50
PER_MILLION_OUTPUT = 200_000_000  # micro-units: a full reply costs 10,000 = 10 credits
WORST = MAX_OUTPUT * PER_MILLION_OUTPUT // 1_000_000 // 1000  # credits per full reply


@pytest.fixture
async def runtime(postgres_database: str) -> AsyncIterator[tuple[Runtime, ScriptedChatModel]]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        env="test",
        secret_key="k" * 48,
        passwords={"argon2_time_cost": 1, "argon2_memory_kib": 1024, "allow_weak_hashing": True},
        email={"backend": "memory"},
        database={
            "url": postgres_database,
            "auto_create": True,
            "pool_size": 20,
            "max_overflow": 30,
        },
        llm={"max_output_tokens": MAX_OUTPUT},
    )
    # The fake answers every message at the maximum, so each charge equals its reservation.
    model = ScriptedChatModel(reply_at_max_output=True)
    container = build_container(settings)
    container.chat_model.override(providers.Object(model))
    started = await start_runtime(settings, container, run_jobs=False)
    try:
        yield started, model
    finally:
        await started.aclose()


async def _funded_user(runtime: Runtime, credits: int) -> User:
    name = f"u{uuid.uuid4().hex[:10]}"
    user = await runtime.get(AccountService).register(
        f"{name}@example.com", name, "correct horse battery"
    )
    assert user.id is not None
    code = f"unlimited_{uuid.uuid4().hex[:8]}"
    await runtime.get(CatalogService).create_tier(
        Tier(
            code=code,
            name="Unlimited",
            features=frozenset({"conversations", "model:portico-fake"}),
            limits={
                "messages": LimitSpec(10_000, Period.DAY),
                "tokens": LimitSpec(10**9, Period.MONTH),
            },
        )
    )
    await runtime.get(PlanService).change_tier(user.id, code, reason="test")
    await runtime.get(CreditService).grant(user.id, credits, idempotency_key="fund")
    # Output only costs: a reply at the maximum costs exactly its worst case.
    await runtime.get(PriceService).set_price(
        ModelPrice(
            "portico-fake", 0, PER_MILLION_OUTPUT, effective_from=datetime.now(UTC) - timedelta(1)
        )
    )
    return await runtime.get(AccountService).get(user.id)


async def _assert_ledger_exact(runtime: Runtime, user_id: int, balance: int) -> None:
    assert await runtime.get(CreditService).balance(user_id) == balance
    async with runtime.get(BillingUnitOfWorkFactory)(read_only=True) as tx:
        assert await tx.credits.total(user_id) == balance
        reservations = await tx.reservations.expired(datetime(2100, 1, 1, tzinfo=UTC), 1000)
    held = [r for r in reservations if r.user_id == user_id and r.status is ReservationStatus.HELD]
    assert held == []


async def test_100_concurrent_sends_against_50_worst_cases_answer_exactly_50(
    runtime: tuple[Runtime, ScriptedChatModel],
) -> None:
    app, _model = runtime
    user = await _funded_user(app, 50 * WORST)
    assert user.id is not None
    conversation = await app.get(ConversationService).create(user)
    assert conversation.id is not None
    messages = app.get(MessageService)
    outcomes = await asyncio.gather(
        *(messages.send(user, conversation.id, f"message {n}") for n in range(100)),
        return_exceptions=True,
    )
    answered = [o for o in outcomes if isinstance(o, SendResult)]
    refused = [o for o in outcomes if isinstance(o, InsufficientCreditsError)]
    assert (len(answered), len(refused)) == (50, 50), [
        o for o in outcomes if not isinstance(o, (SendResult, InsufficientCreditsError))
    ]
    assert all(r.reply.credits_charged == WORST for r in answered)
    await _assert_ledger_exact(app, user.id, 0)


async def test_10_concurrent_sends_with_one_id_call_the_model_once_and_charge_once(
    runtime: tuple[Runtime, ScriptedChatModel],
) -> None:
    app, model = runtime
    user = await _funded_user(app, 10 * WORST)
    assert user.id is not None
    conversation = await app.get(ConversationService).create(user)
    assert conversation.id is not None
    messages = app.get(MessageService)
    calls_before = len(model.calls)
    results = await asyncio.gather(
        *(
            messages.send(user, conversation.id, "once", client_message_id="same-id")
            for _ in range(10)
        )
    )
    assert len(model.calls) - calls_before == 1
    assert {r.reply.id for r in results} == {results[0].reply.id}
    assert {r.reply.content for r in results} == {results[0].reply.content}
    await _assert_ledger_exact(app, user.id, 10 * WORST - WORST)


async def test_a_send_is_two_transactions_of_the_statements_the_bench_counts(
    runtime: tuple[Runtime, ScriptedChatModel],
) -> None:
    # `make bench` prices a send's floor at this many round trips (bench/floors.py): a
    # reply costing less than its reservation, whose rest goes back to the balance.
    app, model = runtime
    model.reply_at_max_output = False
    user = await _funded_user(app, 10 * WORST)
    assert user.id is not None
    conversation = await app.get(ConversationService).create(user)
    assert conversation.id is not None
    messages = app.get(MessageService)
    await messages.send(user, conversation.id, "warm")  # entitlements cached
    statements: list[str] = []
    commits: list[object] = []

    def executed(*args: Any) -> None:
        statements.append(args[2])

    def committed(connection: Any) -> None:
        commits.append(connection)

    event.listen(Engine, "before_cursor_execute", executed)
    event.listen(Engine, "commit", committed)
    try:
        await messages.send(user, conversation.id, "counted")
    finally:
        event.remove(Engine, "before_cursor_execute", executed)
        event.remove(Engine, "commit", committed)
    assert len(commits) == 2
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert (len(reads), len(statements) - len(reads)) == (SEND_READS, SEND_WRITES), statements
