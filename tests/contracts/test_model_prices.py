"""The `ModelPriceRepository` contract, through the conversations unit of work, on every
adapter: in memory, SQLite (a file per test) and Postgres."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from core.conversations.model import ModelPrice
from core.conversations.ports import ConversationsUnitOfWorkFactory

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
US = timedelta(microseconds=1)


def price(model: str = "gpt-4o-mini", effective_from: datetime = T0, **changes: Any) -> ModelPrice:
    changes.setdefault("input_per_million", 150_000)
    changes.setdefault("output_per_million", 600_000)
    return ModelPrice(model=model, effective_from=effective_from, **changes)


async def save(uow: ConversationsUnitOfWorkFactory, *items: ModelPrice) -> list[ModelPrice]:
    async with uow() as tx:
        saved = [await tx.model_prices.save(item) for item in items]
        await tx.commit()
    return saved


async def every_price(uow: ConversationsUnitOfWorkFactory) -> list[ModelPrice]:
    async with uow(read_only=True) as tx:
        return await tx.model_prices.all()


async def current(
    uow: ConversationsUnitOfWorkFactory, model: str, at: datetime
) -> ModelPrice | None:
    async with uow(read_only=True) as tx:
        return await tx.model_prices.current(model, at)


def without_id(item: ModelPrice | None) -> tuple[Any, ...] | None:
    if item is None:
        return None
    return (
        item.model,
        item.input_per_million,
        item.output_per_million,
        item.currency,
        item.effective_from,
    )


async def test_save_assigns_an_id_and_keeps_every_field(
    conversations_uow: ConversationsUnitOfWorkFactory,
) -> None:
    wanted = price(
        "meta-llama/Llama-3-8B",
        T0 + 7 * US,
        input_per_million=2**40,
        output_per_million=0,
        currency="EUR",
    )
    (saved,) = await save(conversations_uow, wanted)
    assert saved.id is not None
    assert saved == ModelPrice(
        model="meta-llama/Llama-3-8B",
        input_per_million=2**40,
        output_per_million=0,
        effective_from=T0 + 7 * US,
        currency="eur",
        id=saved.id,
    )
    assert await every_price(conversations_uow) == [saved]
    (other,) = await save(conversations_uow, price())
    assert other.id not in (None, saved.id)
    assert other.currency == "usd"


async def test_saving_the_same_model_and_time_replaces_the_price(
    conversations_uow: ConversationsUnitOfWorkFactory,
) -> None:
    (first,) = await save(conversations_uow, price())
    # The same moment in another zone is the same price.
    moment = T0.astimezone(timezone(timedelta(hours=2)))
    (corrected,) = await save(
        conversations_uow,
        price(effective_from=moment, input_per_million=1, output_per_million=2, currency="gbp"),
    )
    assert corrected.id == first.id
    assert without_id(corrected) == ("gpt-4o-mini", 1, 2, "gbp", T0)
    assert await every_price(conversations_uow) == [corrected]
    # Another time, or another model, is another price.
    later, other_model = await save(
        conversations_uow, price(effective_from=T0 + US), price("gpt-4o")
    )
    assert len({first.id, later.id, other_model.id}) == 3
    assert len(await every_price(conversations_uow)) == 3


async def test_current_is_the_latest_price_in_effect_at_a_moment(
    conversations_uow: ConversationsUnitOfWorkFactory,
) -> None:
    january, february, march = await save(
        conversations_uow,
        price(effective_from=T0, input_per_million=1),
        price(effective_from=T0 + 31 * DAY, input_per_million=2),
        price(effective_from=T0 + 59 * DAY, input_per_million=3),
    )
    await save(conversations_uow, price("gpt-4o", T0 + 10 * DAY, input_per_million=99))
    assert await current(conversations_uow, "gpt-4o-mini", T0 - US) is None
    assert await current(conversations_uow, "gpt-4o-mini", T0) == january
    assert await current(conversations_uow, "gpt-4o-mini", T0 + 31 * DAY - US) == january
    assert await current(conversations_uow, "gpt-4o-mini", T0 + 31 * DAY) == february
    assert await current(conversations_uow, "gpt-4o-mini", T0 + 45 * DAY) == february
    assert await current(conversations_uow, "gpt-4o-mini", T0 + 400 * DAY) == march
    assert (await current(conversations_uow, "gpt-4o", T0 + 400 * DAY)).input_per_million == 99  # type: ignore[union-attr]
    assert await current(conversations_uow, "gpt-4o", T0 + 9 * DAY) is None
    assert await current(conversations_uow, "unknown", T0 + 400 * DAY) is None
    # A moment in another zone is compared as the instant it is.
    in_tokyo = (T0 + 31 * DAY).astimezone(timezone(timedelta(hours=9)))
    assert await current(conversations_uow, "gpt-4o-mini", in_tokyo) == february


async def test_all_lists_prices_by_model_then_effective_from(
    conversations_uow: ConversationsUnitOfWorkFactory,
) -> None:
    models = ["gpt4", "gpt-4o_x", "gpt-4o-mini", "GPT-4o", "gpt-4o", "a/b"]
    saved = await save(
        conversations_uow,
        *(price(model, T0 + n * DAY) for n, model in enumerate(models)),
        price("gpt-4o", T0 - DAY),
        price("gpt-4o", T0 + 100 * DAY),
    )
    listed = await every_price(conversations_uow)
    # By code point, as Python sorts: upper case first, `-` before `_` and digits.
    assert listed == sorted(saved, key=lambda p: (p.model, p.effective_from))
    assert [p.model for p in listed] == [
        "GPT-4o",
        "a/b",
        "gpt-4o",
        "gpt-4o",
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4o_x",
        "gpt4",
    ]


async def test_concurrent_saves_of_one_price_never_conflict(
    conversations_uow: ConversationsUnitOfWorkFactory,
) -> None:
    order: list[int] = []

    async def write(amount: int, pause: float) -> ModelPrice:
        async with conversations_uow() as tx:
            saved = await tx.model_prices.save(price(input_per_million=amount))
            await asyncio.sleep(pause)
            await tx.commit()
            order.append(amount)
        return saved

    results = await asyncio.gather(*(write(n, 0.01 * (4 - n)) for n in range(4)))
    assert len({result.id for result in results}) == 1  # one row
    (stored,) = await every_price(conversations_uow)
    assert stored.input_per_million == order[-1]


async def test_nothing_is_visible_after_a_rollback(
    conversations_uow: ConversationsUnitOfWorkFactory,
) -> None:
    (kept,) = await save(conversations_uow, price())
    async with conversations_uow() as tx:
        await tx.model_prices.save(price(input_per_million=5))
        added = await tx.model_prices.save(price("gpt-4o"))
        # The unit sees its own writes.
        assert (await tx.model_prices.current("gpt-4o-mini", T0)).input_per_million == 5  # type: ignore[union-attr]
        assert await tx.model_prices.current("gpt-4o", T0) == added
        await tx.rollback()
    assert await every_price(conversations_uow) == [kept]
    assert await current(conversations_uow, "gpt-4o", T0) is None
