"""Records of conversations (`core.conversations.model`): conversations, their messages
and the prices of models.

Tokens, costs and credits are BIGINT guarded by CHECKs (costs in micro-units, as in
billing). Rows point at users without `ON DELETE CASCADE`: usage and cost history is
never removed by removing an account by hand (accounts are soft-deleted, and so are
conversations).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from adapters.sqlalchemy.records import Base, SoftDeleteMixin, TimestampMixin
from adapters.sqlalchemy.records_credits import CreditId
from adapters.sqlalchemy.types import UTCDateTime
from core.conversations.model import (
    MAX_CLIENT_MESSAGE_ID_LENGTH,
    MAX_MODEL_LENGTH,
    MAX_TITLE_LENGTH,
    MessageState,
    Role,
)

# Messages accumulate with every exchange: 64-bit ids on Postgres. SQLite only
# autoincrements an `INTEGER PRIMARY KEY` (64-bit there anyway).
MessageId = BigInteger().with_variant(Integer(), "sqlite")

CONVERSATIONS_USER_FK = "fk_conversations_user_id_users"
MESSAGES_CONVERSATION_FK = "fk_messages_conversation_id_conversations"
MESSAGES_USER_FK = "fk_messages_user_id_users"
MESSAGES_REPLY_TO_FK = "fk_messages_reply_to_messages"
MESSAGES_CLIENT_ID_UNIQUE = "uq_messages_conversation_id_client_message_id"
MODEL_PRICES_MODEL_FROM_UNIQUE = "uq_model_prices_model_effective_from"

# The partial unique index: a client message id names one user message per conversation
# (the assistant's reply carries the same id). Postgres and SQLite both have them.
USER_MESSAGE_WITH_ID = text("role = 'user' AND client_message_id IS NOT NULL")


def _one_of(column: str, values: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(str(v.value)) for v in values)})"


def _moment(comment: str, *, nullable: bool = True) -> Mapped[Any]:
    return mapped_column(UTCDateTime, nullable=nullable, comment=comment)


def _model(comment: str, *, nullable: bool = False) -> Mapped[str]:
    return mapped_column(String(MAX_MODEL_LENGTH), nullable=nullable, comment=comment)


def _count(comment: str) -> Mapped[int]:
    return mapped_column(BigInteger, nullable=False, default=0, server_default="0", comment=comment)


class ConversationRecord(TimestampMixin, SoftDeleteMixin, Base):
    """A user's conversation with one model (`core.conversations.model.Conversation`)."""

    __tablename__ = "conversations"
    __table_args__ = (
        # A user's conversations, most recently updated first (`for_user`).
        Index("ix_conversations_user_id_updated_at_id", "user_id", "updated_at", "id"),
        {
            "comment": "Conversations of users with a model; deleted ones are kept "
            "(deleted_at) with their messages."
        },
    )

    id: Mapped[int] = mapped_column(
        Integer, primary_key=True, autoincrement=True, comment="Id of the conversation."
    )
    user_id: Mapped[int] = mapped_column(
        Integer,
        ForeignKey("users.id", name=CONVERSATIONS_USER_FK),
        nullable=False,
        comment="The account it belongs to (users.id).",
    )
    model: Mapped[str] = _model("The model it talks to (gpt-4o-mini...).")
    title: Mapped[str] = mapped_column(
        String(MAX_TITLE_LENGTH),
        nullable=False,
        default="",
        server_default="",
        comment="Title shown to the user; may be empty.",
    )
    system_prompt: Mapped[str] = mapped_column(
        Text,
        nullable=False,
        default="",
        server_default="",
        comment="Instructions sent to the model before the messages; may be empty.",
    )


class MessageRecord(Base):
    """One message of a conversation (`core.conversations.model.Message`)."""

    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint(_one_of("role", Role), name="role"),
        CheckConstraint(_one_of("state", MessageState), name="state"),
        CheckConstraint(
            "input_tokens >= 0 AND output_tokens >= 0 AND cost >= 0 AND credits_charged >= 0",
            name="counts_not_negative",
        ),
        Index(
            MESSAGES_CLIENT_ID_UNIQUE,
            "conversation_id",
            "client_message_id",
            unique=True,
            postgresql_where=USER_MESSAGE_WITH_ID,
            sqlite_where=USER_MESSAGE_WITH_ID,
        ),
        # A conversation's messages in order (`history`, `in_conversation`).
        Index("ix_messages_conversation_id_id", "conversation_id", "id"),
        # The reply to a user message (`reply_to`).
        Index("ix_messages_reply_to", "reply_to"),
        # A user's usage over a window (`usage`).
        Index("ix_messages_user_id_state_created_at", "user_id", "state", "created_at"),
        # Replies left reserved by a crash (`stale_reserved`).
        Index("ix_messages_state_created_at", "state", "created_at"),
        {
            "comment": "Messages of conversations: user messages, and the assistant's "
            "replies with their tokens, cost and credits; a reply leaves reserved once."
        },
    )

    id: Mapped[int] = mapped_column(
        MessageId, primary_key=True, autoincrement=True, comment="Id of the message."
    )
    conversation_id: Mapped[int] = mapped_column(
        Integer,
        ForeignKey("conversations.id", name=MESSAGES_CONVERSATION_FK),
        nullable=False,
        comment="The conversation it belongs to (conversations.id).",
    )
    user_id: Mapped[int] = mapped_column(
        Integer,
        ForeignKey("users.id", name=MESSAGES_USER_FK),
        nullable=False,
        comment="The conversation's owner (users.id), kept here for usage queries.",
    )
    role: Mapped[str] = mapped_column(
        String(16), nullable=False, comment="system, user or assistant."
    )
    content: Mapped[str] = mapped_column(
        Text, nullable=False, default="", server_default="", comment="The text of the message."
    )
    state: Mapped[str] = mapped_column(
        String(16),
        nullable=False,
        comment="reserved (a reply being made, credits held), completed or failed.",
    )
    model: Mapped[str | None] = _model(
        "The model that wrote a reply, as the provider reported it.", nullable=True
    )
    input_tokens: Mapped[int] = _count("Prompt tokens the provider counted for a reply.")
    output_tokens: Mapped[int] = _count("Tokens of a reply, as the provider counted them.")
    cost: Mapped[int] = _count("What a reply cost, in micro-units of the price's currency.")
    credits_charged: Mapped[int] = _count("Credits a reply took from the user.")
    latency_ms: Mapped[int | None] = mapped_column(
        Integer, nullable=True, comment="How long the model took to reply, in milliseconds."
    )
    client_message_id: Mapped[str | None] = mapped_column(
        String(MAX_CLIENT_MESSAGE_ID_LENGTH),
        nullable=True,
        comment="The client's idempotency key: unique per conversation among user "
        "messages; the reply carries its user message's.",
    )
    reply_to: Mapped[int | None] = mapped_column(
        MessageId,
        ForeignKey("messages.id", name=MESSAGES_REPLY_TO_FK),
        nullable=True,
        comment="The user message a reply answers (messages.id).",
    )
    reservation_id: Mapped[int | None] = mapped_column(
        CreditId,
        nullable=True,
        comment="The credit reservation a reply holds (credit_reservations.id).",
    )
    error: Mapped[str | None] = mapped_column(
        Text, nullable=True, comment="Why a reply failed, if it did."
    )
    created_at: Mapped[datetime] = _moment("When the message was saved (UTC).", nullable=False)
    completed_at: Mapped[datetime | None] = _moment(
        "When a reply completed or failed (UTC); NULL while reserved."
    )


class ModelPriceRecord(TimestampMixin, Base):
    """What a model costs from a moment on (`core.conversations.model.ModelPrice`)."""

    __tablename__ = "model_prices"
    __table_args__ = (
        # Also the index of `current`: a model's prices by effective_from.
        UniqueConstraint("model", "effective_from", name=MODEL_PRICES_MODEL_FROM_UNIQUE),
        CheckConstraint(
            "input_per_million >= 0 AND output_per_million >= 0", name="prices_not_negative"
        ),
        {
            "comment": "Prices of models with their history: the one in effect at a moment "
            "is the latest effective_from at or before it."
        },
    )

    id: Mapped[int] = mapped_column(
        Integer, primary_key=True, autoincrement=True, comment="Id of the price."
    )
    model: Mapped[str] = _model("The model priced, as providers spell it.")
    input_per_million: Mapped[int] = mapped_column(
        BigInteger,
        nullable=False,
        comment="Micro-units of `currency` per million input tokens.",
    )
    output_per_million: Mapped[int] = mapped_column(
        BigInteger,
        nullable=False,
        comment="Micro-units of `currency` per million output tokens.",
    )
    currency: Mapped[str] = mapped_column(
        String(3), nullable=False, comment="ISO 4217 currency code, lower case (usd)."
    )
    effective_from: Mapped[datetime] = _moment(
        "From when the price applies (UTC); unique per model.", nullable=False
    )
