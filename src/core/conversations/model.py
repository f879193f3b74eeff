"""Conversations with a model: conversations, their messages, the prices of models, and
the values the chat model port speaks in.

Tokens and costs are integers; a cost is micro-units of the price's currency (1 USD =
1_000_000). Times are aware datetimes in UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from core.shared.errors import RuleViolationError
from core.shared.money import check_currency

MAX_TITLE_LENGTH = 200
MAX_SYSTEM_PROMPT_LENGTH = 20_000
MAX_CONTENT_LENGTH = 100_000
MAX_MODEL_LENGTH = 200
MAX_CLIENT_MESSAGE_ID_LENGTH = 100
TOKENS_PER_MILLION = 1_000_000
# What a model name may hold (each model is also the feature `model:<name>`).
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$"
_MODEL = re.compile(MODEL_NAME_PATTERN.replace("$", r"\Z"))


def check_model_name(model: str) -> str:
    """A model's name as providers spell it (`gpt-4o-mini`, `meta-llama/Llama-3-8B`)."""
    if not isinstance(model, str) or not model.strip() or len(model) > MAX_MODEL_LENGTH:
        raise RuleViolationError("A model name has 1 to 200 characters.", field="model")
    if not _MODEL.match(model):
        # Each model is also a feature (`model:<name>`, lowercased): what a feature allows.
        raise RuleViolationError(
            "A model name is letters, digits and _.:/- (starting with a letter or digit).",
            field="model",
        )
    return model


def _check_count(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RuleViolationError(f"A {what} is a whole number, 0 or more.")
    return value


@dataclass(frozen=True, slots=True)
class Conversation:
    """A user's conversation with one model; deleted ones are kept (`deleted_at`)."""

    user_id: int
    model: str
    title: str = ""
    system_prompt: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    deleted_at: datetime | None = None
    id: int | None = None

    def __post_init__(self) -> None:
        check_model_name(self.model)
        if len(self.title) > MAX_TITLE_LENGTH:
            raise RuleViolationError("A title has at most 200 characters.", field="title")
        if len(self.system_prompt) > MAX_SYSTEM_PROMPT_LENGTH:
            raise RuleViolationError(
                "A system prompt has at most 20,000 characters.", field="system_prompt"
            )

    def copy(self, **changes: object) -> Conversation:
        return replace(self, **changes)  # type: ignore[arg-type]


class Role(StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


class MessageState(StrEnum):
    RESERVED = "reserved"  # the assistant's reply is being made; credits held for it
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Message:
    """One message of a conversation.

    A user message is `completed` when saved. An assistant message is saved `reserved`
    before the model is called (it holds the credit reservation, `reservation_id`) and
    becomes `completed` with its content, tokens, cost and latency, or `failed` with
    `error`. `client_message_id` (the client's idempotency key) is unique per
    conversation among user messages; the assistant message answering it carries it too.
    """

    conversation_id: int
    user_id: int
    role: Role
    content: str = ""
    state: MessageState = MessageState.COMPLETED
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost: int = 0
    credits_charged: int = 0
    latency_ms: int | None = None
    client_message_id: str | None = None
    reply_to: int | None = None
    reservation_id: int | None = None
    error: str | None = None
    created_at: datetime | None = None
    completed_at: datetime | None = None
    id: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "role", Role(self.role))
        object.__setattr__(self, "state", MessageState(self.state))
        if len(self.content) > MAX_CONTENT_LENGTH:
            raise RuleViolationError("A message has at most 100,000 characters.", field="content")
        if self.client_message_id is not None and not (
            0 < len(self.client_message_id) <= MAX_CLIENT_MESSAGE_ID_LENGTH
        ):
            raise RuleViolationError(
                "A client message id has 1 to 100 characters.", field="client_message_id"
            )
        for name in ("input_tokens", "output_tokens", "cost", "credits_charged"):
            _check_count(getattr(self, name), name)

    def copy(self, **changes: object) -> Message:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """What a model costs from `effective_from` on: micro-units of `currency` per
    million input and per million output tokens. The price of a call is the one in
    effect when it was made (the latest `effective_from` at or before then)."""

    model: str
    input_per_million: int
    output_per_million: int
    effective_from: datetime
    currency: str = "usd"
    id: int | None = None

    def __post_init__(self) -> None:
        check_model_name(self.model)
        object.__setattr__(self, "currency", check_currency(self.currency))
        _check_count(self.input_per_million, "price")
        _check_count(self.output_per_million, "price")

    def cost(self, input_tokens: int, output_tokens: int) -> int:
        """The cost of a call in micro-units, rounded up (never undercharged)."""
        total = input_tokens * self.input_per_million + output_tokens * self.output_per_million
        return -(-total // TOKENS_PER_MILLION)


@dataclass(frozen=True, slots=True)
class UsageTotal:
    """Usage summed over a group (a model, or a day as `YYYY-MM-DD`)."""

    group: str
    input_tokens: int
    output_tokens: int
    cost: int
    credits_charged: int
    messages: int


# --- what the chat model port speaks -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class ChatParams:
    """`max_output_tokens` bounds the reply (and the credits reserved for it);
    `timeout_seconds` bounds the whole call (a stream: from the request to its end)."""

    max_output_tokens: int
    timeout_seconds: float
    temperature: float | None = None


@dataclass(frozen=True, slots=True)
class ChatUsage:
    """The tokens the provider reports for a call (the final record of a stream)."""

    model: str
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class ChatDelta:
    """A piece of the reply's text, as it streams."""

    text: str


@dataclass(frozen=True, slots=True)
class ChatReply:
    text: str
    usage: ChatUsage
    finish_reason: str | None = None
