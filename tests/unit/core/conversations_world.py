"""The billing world with conversations: the scripted model (the container's choice,
or one a test passes), the default prices, and helpers for credits and the ledger."""

from __future__ import annotations

from typing import Any

from adapters.openai.fake import ScriptedChatModel
from core.billing.model import ReservationStatus
from core.conversations.conversations import ConversationService
from core.conversations.model import Message
from core.conversations.ports import ChatModel, ConversationsUnitOfWorkFactory
from core.conversations.prices import PriceService
from core.conversations.sending import MessageService
from core.identity.model import User
from core.shared.query import PageRequest
from tests.unit.core.billing_world import BillingWorld


class ConversationsWorld(BillingWorld):
    def __init__(self, model: ChatModel | None = None, **settings: Any) -> None:
        ports = {ChatModel: model} if model is not None else None
        super().__init__(ports=ports, **settings)
        self.chat_model = self.services.get(ChatModel)
        self.model = (
            self.chat_model
            if isinstance(self.chat_model, ScriptedChatModel)
            else ScriptedChatModel()  # unused: the world talks to another model
        )
        self.conversations = self.services.get(ConversationService)
        self.messages = self.services.get(MessageService)
        self.prices = self.services.get(PriceService)
        self.conversations_uow = self.services.get(ConversationsUnitOfWorkFactory)

    async def seeded(self) -> ConversationsWorld:
        await super().seeded()
        await self.prices.ensure_default_prices()
        return self

    async def funded(self, name: str = "ada", credits: int = 10_000) -> User:
        user = await self.member(name)
        assert user.id is not None
        if credits:
            await self.credits.grant(user.id, credits, idempotency_key=f"fund:{name}")
        return user

    async def all_messages(self, conversation_id: int) -> list[Message]:
        async with self.conversations_uow(read_only=True) as tx:
            page = await tx.messages.in_conversation(conversation_id, PageRequest(limit=100))
        return list(page.items)

    async def assert_ledger_exact(self, user: User) -> None:
        """Balance = sum of the ledger; no reservation left held; every reservation's
        kept amount equals the credits charged on its message."""
        assert user.id is not None
        assert await self.credits.balance(user.id) == await self.ledger_sum(user.id)
        async with self.billing_uow(read_only=True) as tx:
            held = await tx.reservations.expired(self.clock.now().replace(year=2100), 1000)
        assert [
            r for r in held if r.status is ReservationStatus.HELD and r.user_id == user.id
        ] == []
