"""Conversations, messages and usage as the API shows them."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from core.conversations.model import (
    MAX_CLIENT_MESSAGE_ID_LENGTH,
    MAX_CONTENT_LENGTH,
    MAX_MODEL_LENGTH,
    MAX_SYSTEM_PROMPT_LENGTH,
    MAX_TITLE_LENGTH,
    MODEL_NAME_PATTERN,
    Conversation,
    Message,
    UsageTotal,
)


class ConversationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field("", max_length=MAX_TITLE_LENGTH)
    model: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_MODEL_LENGTH,
        pattern=MODEL_NAME_PATTERN,
        description="Unset: the default model (PORTICO_LLM__DEFAULT_MODEL). Letters, digits "
        "and _.:/- (each model is also the feature `model:<name>`).",
    )
    system_prompt: str = Field("", max_length=MAX_SYSTEM_PROMPT_LENGTH)


class ConversationUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(..., max_length=MAX_TITLE_LENGTH)


class ConversationRead(BaseModel):
    id: int
    title: str
    model: str
    system_prompt: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_conversation(cls, conversation: Conversation) -> ConversationRead:
        assert conversation.id is not None and conversation.created_at is not None
        return cls(
            id=conversation.id,
            title=conversation.title,
            model=conversation.model,
            system_prompt=conversation.system_prompt,
            created_at=conversation.created_at,
            updated_at=conversation.updated_at or conversation.created_at,
        )


class ConversationList(BaseModel):
    items: list[ConversationRead]
    next_cursor: str | None


class MessageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: str = Field(..., min_length=1, max_length=MAX_CONTENT_LENGTH)
    client_message_id: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_CLIENT_MESSAGE_ID_LENGTH,
        description="Your idempotency key: the same id again returns the first result "
        "and charges once.",
    )


class MessageRead(BaseModel):
    """A message; an assistant message's `state` is `reserved` while it is being made,
    then `completed` or `failed` (`error`)."""

    id: int
    role: str
    content: str
    state: str
    model: str | None
    input_tokens: int
    output_tokens: int
    cost: int = Field(description="Micro-units of the price's currency.")
    credits_charged: int
    latency_ms: int | None
    client_message_id: str | None
    error: str | None
    created_at: datetime

    @classmethod
    def from_message(cls, message: Message) -> MessageRead:
        assert message.id is not None and message.created_at is not None
        return cls(
            id=message.id,
            role=message.role.value,
            content=message.content,
            state=message.state.value,
            model=message.model,
            input_tokens=message.input_tokens,
            output_tokens=message.output_tokens,
            cost=message.cost,
            credits_charged=message.credits_charged,
            latency_ms=message.latency_ms,
            client_message_id=message.client_message_id,
            error=message.error,
            created_at=message.created_at,
        )


class MessageList(BaseModel):
    items: list[MessageRead]
    next_cursor: str | None


class UsageRead(BaseModel):
    model: str
    input_tokens: int
    output_tokens: int
    cost: int = Field(description="Micro-units of the price's currency.")
    credits_charged: int


class SendRead(BaseModel):
    user_message: MessageRead
    assistant_message: MessageRead
    usage: UsageRead

    @classmethod
    def build(cls, user_message: Message, reply: Message) -> SendRead:
        return cls(
            user_message=MessageRead.from_message(user_message),
            assistant_message=MessageRead.from_message(reply),
            usage=UsageRead(
                model=reply.model or "",
                input_tokens=reply.input_tokens,
                output_tokens=reply.output_tokens,
                cost=reply.cost,
                credits_charged=reply.credits_charged,
            ),
        )


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]")


class UsageQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: AwareDatetime | None = Field(None, description="Default: 30 days before `until`.")
    until: AwareDatetime | None = Field(None, description="Default: now.")
    group_by: Literal["model", "day"] = "model"

    @field_validator("since", "until", mode="before")
    @classmethod
    def _iso_8601(cls, value: object) -> object:
        # pydantic would read a bare number as a Unix time; the contract is ISO 8601.
        if isinstance(value, str) and not _ISO_DATE.match(value):
            raise ValueError("an ISO 8601 date-time with its offset, e.g. 2026-12-01T00:00:00Z")
        return value


class UsageTotalRead(BaseModel):
    group: str = Field(description="The model, or the day (`YYYY-MM-DD`, UTC).")
    input_tokens: int
    output_tokens: int
    cost: int
    credits_charged: int
    messages: int

    @classmethod
    def from_total(cls, total: UsageTotal) -> UsageTotalRead:
        return cls(
            group=total.group,
            input_tokens=total.input_tokens,
            output_tokens=total.output_tokens,
            cost=total.cost,
            credits_charged=total.credits_charged,
            messages=total.messages,
        )


class UsageList(BaseModel):
    items: list[UsageTotalRead]
