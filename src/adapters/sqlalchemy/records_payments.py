"""Records of payments (`core.payments.model`): the gateway's customers, checkouts,
subscriptions and payments as Portico keeps them (the log of gateway events and the
reconciliation runs are in `records_payment_events.py`).

Money is BIGINT micro-units, as in billing, guarded by CHECKs. Rows point at users
without `ON DELETE CASCADE`: payment history is never removed by removing an account by
hand (accounts are soft-deleted). Gateway ids are opaque strings of at most 255
characters (`core.payments.model.MAX_GATEWAY_ID_LENGTH`).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from adapters.sqlalchemy.records import Base, TimestampMixin
from adapters.sqlalchemy.records_billing import CODE_LENGTH
from adapters.sqlalchemy.types import UTCDateTime
from core.payments.model import (
    MAX_GATEWAY_ID_LENGTH,
    CheckoutKind,
    CheckoutStatus,
    PaymentKind,
    PaymentStatus,
    SubscriptionStatus,
)

# Payments accumulate with every invoice: 64-bit ids on Postgres. SQLite only
# autoincrements an `INTEGER PRIMARY KEY` (64-bit there anyway).
PaymentId = BigInteger().with_variant(Integer(), "sqlite")

PAYMENT_CUSTOMERS_PK = "pk_payment_customers"
PAYMENT_CUSTOMERS_GATEWAY_ID_UNIQUE = "uq_payment_customers_gateway_customer_id"
PAYMENT_CUSTOMERS_USER_FK = "fk_payment_customers_user_id_users"
CHECKOUTS_PK = "pk_checkouts"
CHECKOUTS_SESSION_UNIQUE = "uq_checkouts_gateway_session_id"
CHECKOUTS_USER_FK = "fk_checkouts_user_id_users"
SUBSCRIPTIONS_GATEWAY_ID_UNIQUE = "uq_subscriptions_gateway_subscription_id"
SUBSCRIPTIONS_USER_FK = "fk_subscriptions_user_id_users"
PAYMENTS_REFERENCE_UNIQUE = "uq_payments_reference"
PAYMENTS_USER_FK = "fk_payments_user_id_users"

GATEWAY_ID_LENGTH = MAX_GATEWAY_ID_LENGTH
STATUS_LENGTH = 24  # the longest: incomplete_expired, partially_refunded


def one_of(column: str, values: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(str(v.value)) for v in values)})"


def _gateway_id(comment: str, *, nullable: bool = False) -> Mapped[Any]:
    return mapped_column(String(GATEWAY_ID_LENGTH), nullable=nullable, comment=comment)


def _user_id(foreign_key: str, comment: str) -> Mapped[int]:
    return mapped_column(
        Integer, ForeignKey("users.id", name=foreign_key), nullable=False, comment=comment
    )


def moment(comment: str, *, nullable: bool = True) -> Mapped[Any]:
    return mapped_column(UTCDateTime, nullable=nullable, comment=comment)


def _amount(comment: str) -> Mapped[int]:
    return mapped_column(BigInteger, nullable=False, default=0, server_default="0", comment=comment)


class CustomerRecord(TimestampMixin, Base):
    """A user's customer at the gateway (`core.payments.model.Customer`)."""

    __tablename__ = "payment_customers"
    __table_args__ = (
        UniqueConstraint("gateway_customer_id", name=PAYMENT_CUSTOMERS_GATEWAY_ID_UNIQUE),
        {"comment": "The payment gateway's customer of each user: one each way."},
    )

    user_id: Mapped[int] = mapped_column(
        Integer,
        ForeignKey("users.id", name=PAYMENT_CUSTOMERS_USER_FK),
        primary_key=True,
        autoincrement=False,
        comment="The account (users.id); one customer per account.",
    )
    gateway_customer_id: Mapped[str] = _gateway_id(
        "The gateway's customer id (Stripe `cus_...`); unique."
    )


class CheckoutRecord(TimestampMixin, Base):
    """A hosted checkout Portico started (`core.payments.model.Checkout`)."""

    __tablename__ = "checkouts"
    __table_args__ = (
        UniqueConstraint("gateway_session_id", name=CHECKOUTS_SESSION_UNIQUE),
        CheckConstraint(one_of("kind", CheckoutKind), name="kind"),
        CheckConstraint(one_of("status", CheckoutStatus), name="status"),
        {
            "comment": "Hosted checkouts started for users; each completes at most once "
            "(a conditional update from open)."
        },
    )

    id: Mapped[str] = mapped_column(
        String(GATEWAY_ID_LENGTH),
        primary_key=True,
        comment="Our random id; the gateway's client reference and idempotency key.",
    )
    user_id: Mapped[int] = _user_id(CHECKOUTS_USER_FK, "The buyer (users.id).")
    kind: Mapped[str] = mapped_column(
        String(16), nullable=False, comment="tier (a subscription) or credit_pack (one-time)."
    )
    code: Mapped[str] = mapped_column(
        String(CODE_LENGTH), nullable=False, comment="The tier or the credit pack bought."
    )
    status: Mapped[str] = mapped_column(
        String(16),
        nullable=False,
        default=CheckoutStatus.OPEN.value,
        server_default=CheckoutStatus.OPEN.value,
        comment="open or completed; completes once.",
    )
    gateway_session_id: Mapped[str | None] = _gateway_id(
        "The gateway's checkout session (Stripe `cs_...`); unique, NULL until created.",
        nullable=True,
    )
    url: Mapped[str | None] = mapped_column(
        Text, nullable=True, comment="Where the buyer pays (the gateway's page)."
    )
    completed_at: Mapped[datetime | None] = moment("When it completed (UTC); NULL while open.")


class SubscriptionRecord(TimestampMixin, Base):
    """A user's subscription as last read from the gateway (`Subscription`)."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        UniqueConstraint("gateway_subscription_id", name=SUBSCRIPTIONS_GATEWAY_ID_UNIQUE),
        CheckConstraint(one_of("status", SubscriptionStatus), name="status"),
        # A user's subscriptions, newest first (`current`, `latest`).
        Index("ix_subscriptions_user_id_id", "user_id", "id"),
        # The grace-period sweep: past-due ones by when they fell due.
        Index("ix_subscriptions_status_past_due_since", "status", "past_due_since"),
        # Scheduled downgrades by the end of the paid period (few rows have a tier set).
        Index(
            "ix_subscriptions_scheduled_tier_code_current_period_end",
            "scheduled_tier_code",
            "current_period_end",
        ),
        {
            "comment": "Subscriptions at the payment gateway as Portico last read them; "
            "an older read never overwrites a newer one (synced_at)."
        },
    )

    id: Mapped[int] = mapped_column(
        Integer, primary_key=True, autoincrement=True, comment="Id of the subscription."
    )
    user_id: Mapped[int] = _user_id(SUBSCRIPTIONS_USER_FK, "The subscriber (users.id).")
    gateway_subscription_id: Mapped[str] = _gateway_id(
        "The gateway's subscription id (Stripe `sub_...`); unique."
    )
    gateway_customer_id: Mapped[str] = _gateway_id("The gateway's customer it bills.")
    tier_code: Mapped[str] = mapped_column(
        String(CODE_LENGTH), nullable=False, comment="The tier it gives the user now."
    )
    status: Mapped[str] = mapped_column(
        String(STATUS_LENGTH),
        nullable=False,
        comment="The gateway's state: incomplete, incomplete_expired, trialing, active, "
        "past_due, unpaid, canceled or paused.",
    )
    current_period_end: Mapped[datetime | None] = moment("End of the paid period (UTC).")
    cancel_at_period_end: Mapped[bool] = mapped_column(
        Boolean,
        nullable=False,
        default=False,
        server_default=false(),
        comment="Whether it ends at current_period_end instead of renewing.",
    )
    scheduled_tier_code: Mapped[str | None] = mapped_column(
        String(CODE_LENGTH),
        nullable=True,
        comment="A lower tier taking effect at current_period_end; NULL: none.",
    )
    past_due_since: Mapped[datetime | None] = moment(
        "When a renewal first failed (UTC); the grace period counts from it."
    )
    canceled_at: Mapped[datetime | None] = moment("When it was canceled (UTC).")
    synced_at: Mapped[datetime | None] = moment(
        "When the gateway state stored here was read (UTC)."
    )


class PaymentRecord(TimestampMixin, Base):
    """Money that moved, or failed to (`core.payments.model.Payment`)."""

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("reference", name=PAYMENTS_REFERENCE_UNIQUE),
        CheckConstraint(one_of("kind", PaymentKind), name="kind"),
        CheckConstraint(one_of("status", PaymentStatus), name="status"),
        CheckConstraint(
            "amount >= 0 AND amount_refunded >= 0 AND credits_granted >= 0 "
            "AND credits_reversed >= 0",
            name="amounts_not_negative",
        ),
        CheckConstraint("amount_refunded <= amount", name="refund_within_amount"),
        CheckConstraint("credits_reversed <= credits_granted", name="reversal_within_grant"),
        # A user's payments, newest first (the payment history).
        Index("ix_payments_user_id_id", "user_id", "id"),
        # Refunds name the payment intent.
        Index("ix_payments_gateway_payment_id", "gateway_payment_id"),
        {
            "comment": "Payments: one per invoice or one-time checkout, recorded once "
            "(the reference is unique); refunds and reversed credits never exceed what "
            "was paid and granted."
        },
    )

    id: Mapped[int] = mapped_column(
        PaymentId, primary_key=True, autoincrement=True, comment="Id of the payment."
    )
    user_id: Mapped[int] = _user_id(PAYMENTS_USER_FK, "The payer (users.id).")
    reference: Mapped[str] = _gateway_id(
        "The gateway object it stands for (invoice `in_...`, checkout `cs_...`); unique."
    )
    kind: Mapped[str] = mapped_column(
        String(16), nullable=False, comment="subscription (an invoice) or credit_pack."
    )
    amount: Mapped[int] = mapped_column(
        BigInteger, nullable=False, comment="Amount in micro-units of `currency` (1 USD = 10^6)."
    )
    currency: Mapped[str] = mapped_column(
        String(3), nullable=False, comment="ISO 4217 currency code, lower case (usd)."
    )
    status: Mapped[str] = mapped_column(
        String(STATUS_LENGTH),
        nullable=False,
        comment="succeeded, failed, refunded or partially_refunded.",
    )
    product_code: Mapped[str | None] = mapped_column(
        String(CODE_LENGTH), nullable=True, comment="The credit pack bought, if any."
    )
    tier_code: Mapped[str | None] = mapped_column(
        String(CODE_LENGTH), nullable=True, comment="The tier paid for, if any."
    )
    gateway_payment_id: Mapped[str | None] = _gateway_id(
        "The gateway's payment intent (Stripe `pi_...`), which refunds name.", nullable=True
    )
    gateway_subscription_id: Mapped[str | None] = _gateway_id(
        "The subscription an invoice belongs to.", nullable=True
    )
    amount_refunded: Mapped[int] = _amount("Refunded so far, in micro-units; at most amount.")
    credits_granted: Mapped[int] = _amount("Credits the payment added to the ledger.")
    credits_reversed: Mapped[int] = _amount(
        "Credits taken back by refunds; at most credits_granted."
    )
