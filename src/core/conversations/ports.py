"""What conversations need from the outside world: a chat model, and the records in a
`ConversationsUnitOfWork` (which reaches billing's too, so a message, its usage and its
credits commit together)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Literal, Protocol

from core.billing.ports import BillingUnitOfWork
from core.conversations.model import (
    ChatDelta,
    ChatMessage,
    ChatParams,
    ChatReply,
    ChatUsage,
    Conversation,
    Message,
    ModelPrice,
    UsageTotal,
)
from core.shared.query import Page, PageRequest


class ChatModel(Protocol):
    """A chat completion provider (any OpenAI-compatible server, or the scripted fake).

    - `complete(messages, model, params)`: the whole reply and its usage.
    - `stream(messages, model, params)`: the reply as `ChatDelta`s, then exactly one
      `ChatUsage` (the tokens the provider reports) as the last item.
    Both end within `params.timeout_seconds` or raise `ModelTimeoutError`. Provider
    errors map to core errors: `ModelRateLimitedError` (its rate limits),
    `ModelUnavailableError` (down, 5xx, connection), `ModelBadRequestError`,
    `ContentRefusedError`. Retries (bounded) happen only before the first token: a
    stream that breaks after it raises `ModelUnavailableError`, and what was yielded
    stands.
    """

    @abstractmethod
    async def complete(
        self, messages: Sequence[ChatMessage], model: str, params: ChatParams
    ) -> ChatReply: ...

    @abstractmethod
    def stream(
        self, messages: Sequence[ChatMessage], model: str, params: ChatParams
    ) -> AsyncIterator[ChatDelta | ChatUsage]: ...


class ConversationRepository(Protocol):
    """Conversations.

    - `add` assigns `id` and stamps `created_at`/`updated_at`.
    - `get(id)`: the conversation, deleted or not; None when there is none.
    - `for_user(user_id, page)`: the user's conversations that are not deleted, most
      recently updated first, cursor pagination.
    - `update` writes `title`, `system_prompt`, `updated_at`, `deleted_at`.
    """

    @abstractmethod
    async def add(self, conversation: Conversation) -> Conversation: ...

    @abstractmethod
    async def get(self, conversation_id: int) -> Conversation | None: ...

    @abstractmethod
    async def for_user(self, user_id: int, page: PageRequest) -> Page[Conversation]: ...

    @abstractmethod
    async def update(self, conversation: Conversation) -> Conversation: ...


class MessageRepository(Protocol):
    """Messages.

    - `add` assigns `id`, stamps `created_at` unless the message has one (the core's
      clock), and raises `MessageExistsError` when a user message with this
      `client_message_id` exists in the conversation (also when a concurrent add wins,
      at the latest at commit); the unit stays usable. A missing conversation, user or
      replied-to message raises its not-found error, and the unit is to be rolled back.
    - `get(id)`, `find_user_message(conversation_id, client_message_id)`,
      `reply_to(user_message_id)`: the message, or None.
    - `finish(message)`: writes the reply fields (`content`, `state`, tokens, `cost`,
      `credits_charged`, `latency_ms`, `model`, `error`, `completed_at`) of a `reserved`
      message in one conditional update; returns it, or None when it was not reserved
      (so a reply is finished exactly once).
    - `history(conversation_id, limit)`: the role and content of the newest `limit`
      completed messages, oldest first (what the model is sent).
    - `in_conversation(conversation_id, page)`: every message, oldest first, cursor
      pagination.
    - `usage(user_id, since, until, group_by)`: completed assistant messages of the
      user created in [since, until), summed per model or per UTC day, ordered by group.
    - `stale_reserved(before, limit)`: reserved messages created before `before`.
    """

    @abstractmethod
    async def add(self, message: Message) -> Message: ...

    @abstractmethod
    async def get(self, message_id: int) -> Message | None: ...

    @abstractmethod
    async def find_user_message(
        self, conversation_id: int, client_message_id: str
    ) -> Message | None: ...

    @abstractmethod
    async def reply_to(self, user_message_id: int) -> Message | None: ...

    @abstractmethod
    async def finish(self, message: Message) -> Message | None: ...

    @abstractmethod
    async def history(self, conversation_id: int, limit: int) -> list[ChatMessage]: ...

    @abstractmethod
    async def in_conversation(self, conversation_id: int, page: PageRequest) -> Page[Message]: ...

    @abstractmethod
    async def usage(
        self,
        user_id: int,
        since: datetime,
        until: datetime,
        group_by: Literal["model", "day"],
    ) -> list[UsageTotal]: ...

    @abstractmethod
    async def stale_reserved(self, before: datetime, limit: int) -> list[Message]: ...


class ModelPriceRepository(Protocol):
    """Model prices, kept with their history.

    - `save` inserts the price, or replaces the one with the same model and
      `effective_from` (an operator correcting a price); assigns `id`.
    - `current(model, at)`: the price with the latest `effective_from` at or before
      `at`, or None.
    - `all()`: every price, by model then `effective_from`.
    """

    @abstractmethod
    async def save(self, price: ModelPrice) -> ModelPrice: ...

    @abstractmethod
    async def current(self, model: str, at: datetime) -> ModelPrice | None: ...

    @abstractmethod
    async def all(self) -> list[ModelPrice]: ...


class ConversationsUnitOfWork(BillingUnitOfWork, Protocol):
    """A transaction over conversations, messages and prices, and billing's records
    (credits, reservations, usage counters), the audit trail and the outbox."""

    conversations: ConversationRepository
    messages: MessageRepository
    model_prices: ModelPriceRepository


class ConversationsUnitOfWorkFactory(Protocol):
    """Opens a new `ConversationsUnitOfWork` per call (`read_only` as for identity)."""

    @abstractmethod
    def __call__(self, *, read_only: bool = False) -> ConversationsUnitOfWork: ...
