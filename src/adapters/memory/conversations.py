"""Conversations and model prices in process memory, transactional like the SQL tables
(messages are in `messages.py`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from adapters.memory.payments import UserExists
from adapters.memory.pending_rows import PendingRows, RowTable
from adapters.memory.query import QueryEvaluator, dataclass_field_types
from core.conversations.errors import ConversationNotFoundError
from core.conversations.model import Conversation, ModelPrice
from core.conversations.ports import ConversationRepository, ModelPriceRepository
from core.identity.errors import UserNotFoundError
from core.shared.errors import ConflictError
from core.shared.query import Condition, ListQuery, Operator, Page, PageRequest, SortKey

_CONVERSATION_QUERIES = QueryEvaluator(dataclass_field_types(Conversation), pk="id")
_RECENT_FIRST = (SortKey("updated_at", descending=True), SortKey("id", descending=True))

PriceKey = tuple[str, datetime]


class InMemoryConversationState(RowTable[int, Conversation]):
    """The committed conversations, by id."""


class InMemoryModelPriceState(RowTable[PriceKey, ModelPrice]):
    """The committed prices, by model and `effective_from`."""


class InMemoryConversationRepository(PendingRows[int, Conversation], ConversationRepository):
    """`ConversationRepository` over an `InMemoryConversationState` (contract: the port).

    `add` stamps `created_at` and `updated_at` alike; `user_exists` stands in for the
    foreign key (`UserNotFoundError`). `get` finds deleted conversations too; `for_user`
    leaves them out and pages by (`updated_at`, id), newest first. `update` locks the
    conversation until the unit ends, as the SQL UPDATE locks the row, and writes the
    caller's `updated_at` (now when it is None) and `deleted_at`.
    """

    def __init__(self, state: InMemoryConversationState, user_exists: UserExists) -> None:
        # Ids come from the table's sequence: never taken twice.
        super().__init__(state, key=lambda c: c.id or 0, exists_error=ConflictError)
        self._user_exists = user_exists

    async def add(self, conversation: Conversation) -> Conversation:
        if not await self._user_exists(conversation.user_id):
            raise UserNotFoundError()
        now = datetime.now(UTC)
        return self._insert(
            conversation.copy(id=next(self._table.ids), created_at=now, updated_at=now)
        )

    async def get(self, conversation_id: int) -> Conversation | None:
        return self._get(conversation_id)

    async def for_user(self, user_id: int, page: PageRequest) -> Page[Conversation]:
        query = ListQuery(
            conditions=(Condition("user_id", Operator.EQ, user_id),), sort=_RECENT_FIRST, page=page
        )
        found = _CONVERSATION_QUERIES.page(self._rows(), query)
        return Page(items=found.items, next_cursor=found.next_cursor)

    async def update(self, conversation: Conversation) -> Conversation:
        key = conversation.id
        if key is None or self._get(key) is None:
            raise ConversationNotFoundError()
        await self._hold(key)
        current = self._get(key)
        assert current is not None
        return self._replace(
            current.copy(
                title=conversation.title,
                system_prompt=conversation.system_prompt,
                updated_at=conversation.updated_at or datetime.now(UTC),
                deleted_at=conversation.deleted_at,
            )
        )


class InMemoryModelPriceRepository(PendingRows[PriceKey, ModelPrice], ModelPriceRepository):
    """`ModelPriceRepository` over an `InMemoryModelPriceState` (contract: the port).

    `save` locks the (model, `effective_from`) key until the unit ends, as the SQL
    upsert locks the row: a second unit saving the same price waits, then replaces
    what the first committed (keeping its id), so concurrent saves never collide.
    Times are kept in UTC, as the SQL columns give them back.
    """

    def __init__(self, state: InMemoryModelPriceState) -> None:
        super().__init__(
            state,
            key=lambda price: (price.model, price.effective_from),
            # Unreachable while every write holds the key's lock (the upsert's guarantee).
            exists_error=ConflictError,
        )

    async def save(self, price: ModelPrice) -> ModelPrice:
        stored = replace(price, effective_from=price.effective_from.astimezone(UTC))
        key = (stored.model, stored.effective_from)
        await self._hold(key)
        current = self._get(key)
        if current is None:
            return self._insert(replace(stored, id=next(self._table.ids)))
        return self._replace(replace(stored, id=current.id))

    async def current(self, model: str, at: datetime) -> ModelPrice | None:
        prices = [p for p in self._rows() if p.model == model and p.effective_from <= at]
        return max(prices, key=lambda p: p.effective_from, default=None)

    async def all(self) -> list[ModelPrice]:
        return sorted(self._rows(), key=lambda p: (p.model, p.effective_from))
