"""conversations: conversations, their messages, and the prices of models.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-14
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# CHECK names go through `op.f`: Alembic applies the records' naming convention
# ("ck_<table>_<name>"), which would otherwise prefix a full name a second time.
MESSAGE_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
RESERVATION_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MODEL = sa.String(length=200)
USER_MESSAGE_WITH_ID = sa.text("role = 'user' AND client_message_id IS NOT NULL")


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
            comment="When the row was created (UTC).",
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
            comment="When the row was last changed (UTC).",
        ),
    ]


def _moment(name: str, comment: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, comment=comment)


def _count(name: str, comment: str) -> sa.Column[object]:
    return sa.Column(name, sa.BigInteger(), nullable=False, server_default="0", comment=comment)


def _create_conversations() -> None:
    op.create_table(
        "conversations",
        sa.Column(
            "id",
            sa.Integer(),
            primary_key=True,
            autoincrement=True,
            comment="Id of the conversation.",
        ),
        sa.Column(
            "user_id",
            sa.Integer(),
            nullable=False,
            comment="The account it belongs to (users.id).",
        ),
        sa.Column(
            "model", MODEL, nullable=False, comment="The model it talks to (gpt-4o-mini...)."
        ),
        sa.Column(
            "title",
            sa.String(length=200),
            nullable=False,
            server_default="",
            comment="Title shown to the user; may be empty.",
        ),
        sa.Column(
            "system_prompt",
            sa.Text(),
            nullable=False,
            server_default="",
            comment="Instructions sent to the model before the messages; may be empty.",
        ),
        *_timestamps(),
        _moment("deleted_at", "When the row was soft-deleted (UTC); NULL while it is live."),
        sa.PrimaryKeyConstraint("id", name="pk_conversations"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_conversations_user_id_users"),
        comment="Conversations of users with a model; deleted ones are kept "
        "(deleted_at) with their messages.",
    )
    op.create_index(
        "ix_conversations_user_id_updated_at_id", "conversations", ["user_id", "updated_at", "id"]
    )


def _create_messages() -> None:
    op.create_table(
        "messages",
        sa.Column(
            "id", MESSAGE_ID, primary_key=True, autoincrement=True, comment="Id of the message."
        ),
        sa.Column(
            "conversation_id",
            sa.Integer(),
            nullable=False,
            comment="The conversation it belongs to (conversations.id).",
        ),
        sa.Column(
            "user_id",
            sa.Integer(),
            nullable=False,
            comment="The conversation's owner (users.id), kept here for usage queries.",
        ),
        sa.Column(
            "role", sa.String(length=16), nullable=False, comment="system, user or assistant."
        ),
        sa.Column(
            "content",
            sa.Text(),
            nullable=False,
            server_default="",
            comment="The text of the message.",
        ),
        sa.Column(
            "state",
            sa.String(length=16),
            nullable=False,
            comment="reserved (a reply being made, credits held), completed or failed.",
        ),
        sa.Column(
            "model",
            MODEL,
            nullable=True,
            comment="The model that wrote a reply, as the provider reported it.",
        ),
        _count("input_tokens", "Prompt tokens the provider counted for a reply."),
        _count("output_tokens", "Tokens of a reply, as the provider counted them."),
        _count("cost", "What a reply cost, in micro-units of the price's currency."),
        _count("credits_charged", "Credits a reply took from the user."),
        sa.Column(
            "latency_ms",
            sa.Integer(),
            nullable=True,
            comment="How long the model took to reply, in milliseconds.",
        ),
        sa.Column(
            "client_message_id",
            sa.String(length=100),
            nullable=True,
            comment="The client's idempotency key: unique per conversation among user "
            "messages; the reply carries its user message's.",
        ),
        sa.Column(
            "reply_to",
            MESSAGE_ID,
            nullable=True,
            comment="The user message a reply answers (messages.id).",
        ),
        sa.Column(
            "reservation_id",
            RESERVATION_ID,
            nullable=True,
            comment="The credit reservation a reply holds (credit_reservations.id).",
        ),
        sa.Column("error", sa.Text(), nullable=True, comment="Why a reply failed, if it did."),
        _moment("created_at", "When the message was saved (UTC).", nullable=False),
        _moment("completed_at", "When a reply completed or failed (UTC); NULL while reserved."),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name="fk_messages_conversation_id_conversations",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_messages_user_id_users"),
        sa.ForeignKeyConstraint(
            ["reply_to"], ["messages.id"], name="fk_messages_reply_to_messages"
        ),
        sa.CheckConstraint(
            "role IN ('system', 'user', 'assistant')", name=op.f("ck_messages_role")
        ),
        sa.CheckConstraint(
            "state IN ('reserved', 'completed', 'failed')", name=op.f("ck_messages_state")
        ),
        sa.CheckConstraint(
            "input_tokens >= 0 AND output_tokens >= 0 AND cost >= 0 AND credits_charged >= 0",
            name=op.f("ck_messages_counts_not_negative"),
        ),
        comment="Messages of conversations: user messages, and the assistant's "
        "replies with their tokens, cost and credits; a reply leaves reserved once.",
    )
    op.create_index(
        "uq_messages_conversation_id_client_message_id",
        "messages",
        ["conversation_id", "client_message_id"],
        unique=True,
        postgresql_where=USER_MESSAGE_WITH_ID,
        sqlite_where=USER_MESSAGE_WITH_ID,
    )
    op.create_index("ix_messages_conversation_id_id", "messages", ["conversation_id", "id"])
    op.create_index("ix_messages_reply_to", "messages", ["reply_to"])
    op.create_index(
        "ix_messages_user_id_state_created_at", "messages", ["user_id", "state", "created_at"]
    )
    op.create_index("ix_messages_state_created_at", "messages", ["state", "created_at"])


def _create_model_prices() -> None:
    op.create_table(
        "model_prices",
        sa.Column(
            "id", sa.Integer(), primary_key=True, autoincrement=True, comment="Id of the price."
        ),
        sa.Column(
            "model", MODEL, nullable=False, comment="The model priced, as providers spell it."
        ),
        sa.Column(
            "input_per_million",
            sa.BigInteger(),
            nullable=False,
            comment="Micro-units of `currency` per million input tokens.",
        ),
        sa.Column(
            "output_per_million",
            sa.BigInteger(),
            nullable=False,
            comment="Micro-units of `currency` per million output tokens.",
        ),
        sa.Column(
            "currency",
            sa.String(length=3),
            nullable=False,
            comment="ISO 4217 currency code, lower case (usd).",
        ),
        _moment(
            "effective_from",
            "From when the price applies (UTC); unique per model.",
            nullable=False,
        ),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_model_prices"),
        sa.UniqueConstraint("model", "effective_from", name="uq_model_prices_model_effective_from"),
        sa.CheckConstraint(
            "input_per_million >= 0 AND output_per_million >= 0",
            name=op.f("ck_model_prices_prices_not_negative"),
        ),
        comment="Prices of models with their history: the one in effect at a moment "
        "is the latest effective_from at or before it.",
    )


def upgrade() -> None:
    _create_conversations()
    _create_messages()
    _create_model_prices()


def downgrade() -> None:
    op.drop_table("model_prices")
    op.drop_index("ix_messages_state_created_at", table_name="messages")
    op.drop_index("ix_messages_user_id_state_created_at", table_name="messages")
    op.drop_index("ix_messages_reply_to", table_name="messages")
    op.drop_index("ix_messages_conversation_id_id", table_name="messages")
    op.drop_index("uq_messages_conversation_id_client_message_id", table_name="messages")
    op.drop_table("messages")
    op.drop_index("ix_conversations_user_id_updated_at_id", table_name="conversations")
    op.drop_table("conversations")
