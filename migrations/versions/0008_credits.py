"""credits: balances, their append-only ledger, reservations, and usage counters of limits.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# CHECK names go through `op.f`: Alembic applies the records' naming convention
# ("ck_<table>_<name>"), which would otherwise prefix a full name a second time.
CREDIT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
REASONS = "'grant', 'purchase', 'spend', 'reserve', 'settle', 'release', 'refund', 'reversal'"


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


def upgrade() -> None:
    op.create_table(
        "credit_accounts",
        sa.Column(
            "user_id",
            sa.Integer(),
            primary_key=True,
            autoincrement=False,
            comment="The account whose credits these are (users.id).",
        ),
        sa.Column(
            "balance",
            sa.BigInteger(),
            nullable=False,
            server_default="0",
            comment="Credits available now; never below zero (CHECK).",
        ),
        *_timestamps(),
        sa.PrimaryKeyConstraint("user_id", name="pk_credit_accounts"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_credit_accounts_user_id_users"),
        sa.CheckConstraint("balance >= 0", name=op.f("ck_credit_accounts_balance_not_negative")),
        comment="Credit balance per user, moved only by conditional updates in the "
        "same transaction as its ledger entry; always equals the sum of the ledger.",
    )
    op.create_table(
        "credit_reservations",
        sa.Column(
            "id", CREDIT_ID, primary_key=True, autoincrement=True, comment="Id of the reservation."
        ),
        sa.Column(
            "user_id",
            sa.Integer(),
            nullable=False,
            comment="The account whose credits are held (users.id).",
        ),
        sa.Column(
            "amount",
            sa.BigInteger(),
            nullable=False,
            comment="Credits held (taken from the balance).",
        ),
        sa.Column(
            "status",
            sa.String(length=16),
            nullable=False,
            server_default="held",
            comment="held, settled or released; leaves held once.",
        ),
        sa.Column(
            "usage",
            sa.BigInteger(),
            nullable=True,
            comment="Cost recorded while held; a sweeper settles to it. NULL: none recorded.",
        ),
        sa.Column(
            "settled_amount",
            sa.BigInteger(),
            nullable=True,
            comment="Credits kept when it closed (0 when released); NULL while held.",
        ),
        sa.Column(
            "expires_at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="When the sweeper may close it (UTC).",
        ),
        sa.Column(
            "idempotency_key",
            sa.String(length=200),
            nullable=False,
            comment="Unique per user: the caller's key of the call the credits are held for.",
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="When the credits were held (UTC).",
        ),
        sa.Column(
            "closed_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="When it was settled or released (UTC).",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_credit_reservations"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_credit_reservations_user_id_users"
        ),
        sa.UniqueConstraint(
            "user_id",
            "idempotency_key",
            name="uq_credit_reservations_user_id_idempotency_key",
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_credit_reservations_amount_positive")),
        sa.CheckConstraint(
            "status IN ('held', 'settled', 'released')", name=op.f("ck_credit_reservations_status")
        ),
        comment="Credit reservations: held (taken from the balance) until settled "
        "or released, exactly once; a sweeper closes the expired ones.",
    )
    op.create_index(
        "ix_credit_reservations_status_expires_at",
        "credit_reservations",
        ["status", "expires_at"],
    )
    op.create_table(
        "credit_ledger",
        sa.Column(
            "id",
            CREDIT_ID,
            primary_key=True,
            autoincrement=True,
            comment="Id of the entry; a user's entries are numbered in the order applied.",
        ),
        sa.Column(
            "user_id",
            sa.Integer(),
            nullable=False,
            comment="The account whose balance moved (users.id).",
        ),
        sa.Column(
            "delta",
            sa.BigInteger(),
            nullable=False,
            comment="Credits added (positive) or taken (negative).",
        ),
        sa.Column(
            "balance_after",
            sa.BigInteger(),
            nullable=False,
            comment="The balance right after this entry.",
        ),
        sa.Column(
            "reason",
            sa.String(length=16),
            nullable=False,
            comment="grant, purchase, spend, reserve, settle, release, refund or reversal.",
        ),
        sa.Column(
            "source",
            sa.String(length=500),
            nullable=False,
            server_default="",
            comment="Who or what moved it: admin:7, stripe:cs_..., conversation:42.",
        ),
        sa.Column(
            "note",
            sa.String(length=500),
            nullable=False,
            server_default="",
            comment="Free text for people (why support granted credits).",
        ),
        sa.Column(
            "reservation_id",
            CREDIT_ID,
            nullable=True,
            comment="The reservation this entry holds, settles or releases "
            "(credit_reservations.id).",
        ),
        sa.Column(
            "idempotency_key",
            sa.String(length=200),
            nullable=False,
            comment="Unique per user: the same key again returns this entry and moves nothing.",
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="When the entry was applied (UTC).",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_credit_ledger"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_credit_ledger_user_id_users"),
        sa.ForeignKeyConstraint(
            ["reservation_id"],
            ["credit_reservations.id"],
            name="fk_credit_ledger_reservation_id_credit_reservations",
        ),
        sa.UniqueConstraint(
            "user_id", "idempotency_key", name="uq_credit_ledger_user_id_idempotency_key"
        ),
        sa.CheckConstraint(f"reason IN ({REASONS})", name=op.f("ck_credit_ledger_reason")),
        sa.CheckConstraint(
            "balance_after >= 0", name=op.f("ck_credit_ledger_balance_after_not_negative")
        ),
        comment="Append-only ledger of credit movements; a user's balance is the "
        "sum of their deltas. The idempotency key is unique per user.",
    )
    op.create_index("ix_credit_ledger_user_id_id", "credit_ledger", ["user_id", "id"])
    op.create_table(
        "usage_counters",
        sa.Column(
            "user_id",
            sa.Integer(),
            nullable=False,
            comment="The account that used it (users.id).",
        ),
        sa.Column(
            "name",
            sa.String(length=64),
            nullable=False,
            comment="Code of the limit (messages, tokens).",
        ),
        sa.Column(
            "period_start",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="Start of the period counted (UTC).",
        ),
        sa.Column(
            "used",
            sa.BigInteger(),
            nullable=False,
            comment="Units used in the period; never below zero.",
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="When the counter last moved (UTC).",
        ),
        sa.PrimaryKeyConstraint("user_id", "name", "period_start", name="pk_usage_counters"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_usage_counters_user_id_users"),
        sa.CheckConstraint("used >= 0", name=op.f("ck_usage_counters_used_not_negative")),
        comment="Usage of plan limits per user, limit and period, counted by "
        "conditional upserts that never pass the limit.",
    )


def downgrade() -> None:
    op.drop_table("usage_counters")
    op.drop_index("ix_credit_ledger_user_id_id", table_name="credit_ledger")
    op.drop_table("credit_ledger")
    op.drop_index("ix_credit_reservations_status_expires_at", table_name="credit_reservations")
    op.drop_table("credit_reservations")
    op.drop_table("credit_accounts")
