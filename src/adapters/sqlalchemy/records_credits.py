"""Records of credits (`core.billing`): balances, their append-only ledger, reservations,
and the usage counters of limits.

Money is guarded by the database itself: a balance has a CHECK that keeps it at zero or
more, and the repositories move it with conditional statements only (see `credits.py`).
Rows point at users without `ON DELETE CASCADE`: money history is never removed by
removing an account by hand (accounts are soft-deleted).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from adapters.sqlalchemy.records import Base, TimestampMixin
from adapters.sqlalchemy.types import UTCDateTime
from core.billing.model import (
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_REASON_LENGTH,
    LedgerReason,
    ReservationStatus,
)

# Ledger rows accumulate with every call: 64-bit ids on Postgres. SQLite only
# autoincrements an `INTEGER PRIMARY KEY` (64-bit there anyway).
CreditId = BigInteger().with_variant(Integer(), "sqlite")

CREDIT_LEDGER_KEY_UNIQUE = "uq_credit_ledger_user_id_idempotency_key"
CREDIT_RESERVATIONS_KEY_UNIQUE = "uq_credit_reservations_user_id_idempotency_key"

_REASONS = ", ".join(f"'{reason.value}'" for reason in LedgerReason)
_STATUSES = ", ".join(f"'{status.value}'" for status in ReservationStatus)
MAX_LIMIT_NAME_LENGTH = 64


class CreditAccountRecord(TimestampMixin, Base):
    """A user's credit balance; the row exists from the first credit granted."""

    __tablename__ = "credit_accounts"
    __table_args__ = (
        CheckConstraint("balance >= 0", name="balance_not_negative"),
        {
            "comment": "Credit balance per user, moved only by conditional updates in the "
            "same transaction as its ledger entry; always equals the sum of the ledger."
        },
    )

    user_id: Mapped[int] = mapped_column(
        Integer,
        ForeignKey("users.id"),
        primary_key=True,
        autoincrement=False,
        comment="The account whose credits these are (users.id).",
    )
    balance: Mapped[int] = mapped_column(
        BigInteger,
        nullable=False,
        default=0,
        server_default="0",
        comment="Credits available now; never below zero (CHECK).",
    )


class LedgerEntryRecord(Base):
    """One movement of a balance (`core.billing.model.LedgerEntry`). Never updated."""

    __tablename__ = "credit_ledger"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key", name=CREDIT_LEDGER_KEY_UNIQUE),
        CheckConstraint(f"reason IN ({_REASONS})", name="reason"),
        CheckConstraint("balance_after >= 0", name="balance_after_not_negative"),
        # A user's entries, newest first (`GET /api/v1/credits`).
        Index("ix_credit_ledger_user_id_id", "user_id", "id"),
        {
            "comment": "Append-only ledger of credit movements; a user's balance is the "
            "sum of their deltas. The idempotency key is unique per user."
        },
    )

    id: Mapped[int] = mapped_column(
        CreditId,
        primary_key=True,
        autoincrement=True,
        comment="Id of the entry; a user's entries are numbered in the order applied.",
    )
    user_id: Mapped[int] = mapped_column(
        Integer,
        ForeignKey("users.id"),
        nullable=False,
        comment="The account whose balance moved (users.id).",
    )
    delta: Mapped[int] = mapped_column(
        BigInteger, nullable=False, comment="Credits added (positive) or taken (negative)."
    )
    balance_after: Mapped[int] = mapped_column(
        BigInteger, nullable=False, comment="The balance right after this entry."
    )
    reason: Mapped[str] = mapped_column(
        String(16),
        nullable=False,
        comment="grant, purchase, spend, reserve, settle, release, refund or reversal.",
    )
    source: Mapped[str] = mapped_column(
        String(MAX_REASON_LENGTH),
        nullable=False,
        default="",
        server_default="",
        comment="Who or what moved it: admin:7, stripe:cs_..., conversation:42.",
    )
    note: Mapped[str] = mapped_column(
        String(MAX_REASON_LENGTH),
        nullable=False,
        default="",
        server_default="",
        comment="Free text for people (why support granted credits).",
    )
    reservation_id: Mapped[int | None] = mapped_column(
        CreditId,
        ForeignKey("credit_reservations.id"),
        nullable=True,
        comment="The reservation this entry holds, settles or releases (credit_reservations.id).",
    )
    idempotency_key: Mapped[str] = mapped_column(
        String(MAX_IDEMPOTENCY_KEY_LENGTH),
        nullable=False,
        comment="Unique per user: the same key again returns this entry and moves nothing.",
    )
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, comment="When the entry was applied (UTC)."
    )


class ReservationRecord(Base):
    """Credits held for a call whose cost is not known yet (`Reservation`)."""

    __tablename__ = "credit_reservations"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key", name=CREDIT_RESERVATIONS_KEY_UNIQUE),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(f"status IN ({_STATUSES})", name="status"),
        # The sweeper: held reservations by expiry.
        Index("ix_credit_reservations_status_expires_at", "status", "expires_at"),
        {
            "comment": "Credit reservations: held (taken from the balance) until settled "
            "or released, exactly once; a sweeper closes the expired ones."
        },
    )

    id: Mapped[int] = mapped_column(
        CreditId, primary_key=True, autoincrement=True, comment="Id of the reservation."
    )
    user_id: Mapped[int] = mapped_column(
        Integer,
        ForeignKey("users.id"),
        nullable=False,
        comment="The account whose credits are held (users.id).",
    )
    amount: Mapped[int] = mapped_column(
        BigInteger, nullable=False, comment="Credits held (taken from the balance)."
    )
    status: Mapped[str] = mapped_column(
        String(16),
        nullable=False,
        default=ReservationStatus.HELD.value,
        server_default=ReservationStatus.HELD.value,
        comment="held, settled or released; leaves held once.",
    )
    usage: Mapped[int | None] = mapped_column(
        BigInteger,
        nullable=True,
        comment="Cost recorded while held; a sweeper settles to it. NULL: none recorded.",
    )
    settled_amount: Mapped[int | None] = mapped_column(
        BigInteger,
        nullable=True,
        comment="Credits kept when it closed (0 when released); NULL while held.",
    )
    expires_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, comment="When the sweeper may close it (UTC)."
    )
    idempotency_key: Mapped[str] = mapped_column(
        String(MAX_IDEMPOTENCY_KEY_LENGTH),
        nullable=False,
        comment="Unique per user: the caller's key of the call the credits are held for.",
    )
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, comment="When the credits were held (UTC)."
    )
    closed_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, nullable=True, comment="When it was settled or released (UTC)."
    )


class UsageCounterRecord(Base):
    """How much of one limit a user used in one period."""

    __tablename__ = "usage_counters"
    __table_args__ = (
        PrimaryKeyConstraint("user_id", "name", "period_start", name="pk_usage_counters"),
        CheckConstraint("used >= 0", name="used_not_negative"),
        {
            "comment": "Usage of plan limits per user, limit and period, counted by "
            "conditional upserts that never pass the limit."
        },
    )

    user_id: Mapped[int] = mapped_column(
        Integer,
        ForeignKey("users.id"),
        nullable=False,
        comment="The account that used it (users.id).",
    )
    name: Mapped[str] = mapped_column(
        String(MAX_LIMIT_NAME_LENGTH),
        nullable=False,
        comment="Code of the limit (messages, tokens).",
    )
    period_start: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, comment="Start of the period counted (UTC)."
    )
    used: Mapped[int] = mapped_column(
        BigInteger, nullable=False, comment="Units used in the period; never below zero."
    )
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, comment="When the counter last moved (UTC)."
    )
