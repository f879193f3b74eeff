"""Model prices: what operators set, what a call costs, and the seeded price of the
default (fake) model."""

from __future__ import annotations

from datetime import UTC, datetime

from core.conversations.errors import PriceNotFoundError
from core.conversations.model import ModelPrice
from core.conversations.ports import ConversationsUnitOfWorkFactory
from core.shared.clock import Clock

# The scripted model of the embedded profile costs what a small hosted model does, so
# the demo charges credits the way a real model would: $0.15 / $0.60 per million tokens.
DEFAULT_PRICES = (
    ModelPrice(
        model="portico-fake",
        input_per_million=150_000,
        output_per_million=600_000,
        effective_from=datetime(2026, 1, 1, tzinfo=UTC),
    ),
)


class PriceService:
    """Rules: a price applies from its `effective_from` on, until a later one; a call is
    priced by the price in effect when it is made; a model without a price cannot be
    used (`PriceNotFoundError`), so nothing is ever called for free by omission."""

    def __init__(self, uow: ConversationsUnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def current(self, model: str) -> ModelPrice:
        async with self._uow(read_only=True) as tx:
            price = await tx.model_prices.current(model, self._clock.now())
        if price is None:
            raise PriceNotFoundError()
        return price

    async def set_price(self, price: ModelPrice) -> ModelPrice:
        async with self._uow() as tx:
            saved = await tx.model_prices.save(price)
            await tx.commit()
        return saved

    async def prices(self) -> list[ModelPrice]:
        async with self._uow(read_only=True) as tx:
            return await tx.model_prices.all()

    async def ensure_default_prices(self) -> list[str]:
        """Seed the default prices the catalog lacks (a model with any price is left
        as the operator set it); the models seeded."""
        seeded = []
        async with self._uow() as tx:
            for price in DEFAULT_PRICES:
                if await tx.model_prices.current(price.model, self._clock.now()) is None:
                    await tx.model_prices.save(price)
                    seeded.append(price.model)
            await tx.commit()
        return seeded
