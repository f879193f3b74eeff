"""Conversations and messages (read-only), and model prices (new prices through
`PriceService`: a price is history, so it is added, never edited)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request

from adapters.sqlalchemy.records_conversations import (
    ConversationRecord,
    MessageRecord,
    ModelPriceRecord,
)
from core.conversations.model import ModelPrice
from core.conversations.prices import PriceService
from entrypoints.admin.views.base import ReadOnlyView, identity


@identity("conversations")
class ConversationView(ReadOnlyView, model=ConversationRecord):
    name = "Conversation"
    name_plural = "Conversations"
    icon = "fa-solid fa-comments"
    category = "Conversations"
    column_list = "__all__"


@identity("messages")
class MessageView(ReadOnlyView, model=MessageRecord):
    name = "Message"
    name_plural = "Messages"
    icon = "fa-solid fa-message"
    category = "Conversations"
    column_list = "__all__"


@identity("model-prices")
class ModelPriceView(ReadOnlyView, model=ModelPriceRecord):
    name = "Model price"
    name_plural = "Model prices"
    icon = "fa-solid fa-tag"
    category = "Conversations"
    can_create = True
    column_list = "__all__"
    form_columns = [
        ModelPriceRecord.model,
        ModelPriceRecord.input_per_million,
        ModelPriceRecord.output_per_million,
        ModelPriceRecord.currency,
        ModelPriceRecord.effective_from,
    ]

    async def insert_model(self, request: Request, data: dict[str, Any]) -> Any:
        """A new price through `PriceService.set_price` (its checks), audited."""
        effective = data.get("effective_from") or datetime.now(UTC)
        if isinstance(effective, datetime) and effective.tzinfo is None:
            effective = effective.replace(tzinfo=UTC)  # the form's times are UTC
        saved = (
            await self.context()
            .get(PriceService)
            .set_price(
                ModelPrice(
                    model=str(data.get("model") or ""),
                    input_per_million=int(data.get("input_per_million") or 0),
                    output_per_million=int(data.get("output_per_million") or 0),
                    effective_from=effective,
                    currency=str(data.get("currency") or "usd"),
                )
            )
        )
        await self.audit(
            request,
            "admin.model_price_set",
            target_type="model_price",
            target_id=saved.id,
            model=saved.model,
            input_per_million=saved.input_per_million,
            output_per_million=saved.output_per_million,
        )
        async with self.session_maker() as session:
            return await session.get(ModelPriceRecord, saved.id)
