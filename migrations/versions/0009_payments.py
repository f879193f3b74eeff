"""payments: the gateway's customers, checkouts, subscriptions and payments, the log of
gateway events, and reconciliation runs.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-12
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# CHECK names go through `op.f`: Alembic applies the records' naming convention
# ("ck_<table>_<name>"), which would otherwise prefix a full name a second time.
PAYMENT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
EVENT_PAYLOAD = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
GATEWAY_ID = sa.String(length=255)
CODE = sa.String(length=64)
STATUS = sa.String(length=24)

SUBSCRIPTION_STATUSES = (
    "'incomplete', 'incomplete_expired', 'trialing', 'active', 'past_due', 'unpaid', "
    "'canceled', 'paused'"
)
PAYMENT_STATUSES = "'succeeded', 'failed', 'refunded', 'partially_refunded'"


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


def _amount(name: str, comment: str) -> sa.Column[object]:
    return sa.Column(name, sa.BigInteger(), nullable=False, server_default="0", comment=comment)


def _user_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=f"fk_{table}_user_id_users")


def _create_customers() -> None:
    op.create_table(
        "payment_customers",
        sa.Column(
            "user_id",
            sa.Integer(),
            primary_key=True,
            autoincrement=False,
            comment="The account (users.id); one customer per account.",
        ),
        sa.Column(
            "gateway_customer_id",
            GATEWAY_ID,
            nullable=False,
            comment="The gateway's customer id (Stripe `cus_...`); unique.",
        ),
        *_timestamps(),
        sa.PrimaryKeyConstraint("user_id", name="pk_payment_customers"),
        _user_fk("payment_customers"),
        sa.UniqueConstraint("gateway_customer_id", name="uq_payment_customers_gateway_customer_id"),
        comment="The payment gateway's customer of each user: one each way.",
    )


def _create_checkouts() -> None:
    op.create_table(
        "checkouts",
        sa.Column(
            "id",
            GATEWAY_ID,
            primary_key=True,
            comment="Our random id; the gateway's client reference and idempotency key.",
        ),
        sa.Column("user_id", sa.Integer(), nullable=False, comment="The buyer (users.id)."),
        sa.Column(
            "kind",
            sa.String(length=16),
            nullable=False,
            comment="tier (a subscription) or credit_pack (one-time).",
        ),
        sa.Column("code", CODE, nullable=False, comment="The tier or the credit pack bought."),
        sa.Column(
            "status",
            sa.String(length=16),
            nullable=False,
            server_default="open",
            comment="open or completed; completes once.",
        ),
        sa.Column(
            "gateway_session_id",
            GATEWAY_ID,
            nullable=True,
            comment="The gateway's checkout session (Stripe `cs_...`); unique, NULL until created.",
        ),
        sa.Column(
            "url", sa.Text(), nullable=True, comment="Where the buyer pays (the gateway's page)."
        ),
        _moment("completed_at", "When it completed (UTC); NULL while open."),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_checkouts"),
        _user_fk("checkouts"),
        sa.UniqueConstraint("gateway_session_id", name="uq_checkouts_gateway_session_id"),
        sa.CheckConstraint("kind IN ('tier', 'credit_pack')", name=op.f("ck_checkouts_kind")),
        sa.CheckConstraint("status IN ('open', 'completed')", name=op.f("ck_checkouts_status")),
        comment="Hosted checkouts started for users; each completes at most once "
        "(a conditional update from open).",
    )


def _create_subscriptions() -> None:
    op.create_table(
        "subscriptions",
        sa.Column(
            "id",
            sa.Integer(),
            primary_key=True,
            autoincrement=True,
            comment="Id of the subscription.",
        ),
        sa.Column("user_id", sa.Integer(), nullable=False, comment="The subscriber (users.id)."),
        sa.Column(
            "gateway_subscription_id",
            GATEWAY_ID,
            nullable=False,
            comment="The gateway's subscription id (Stripe `sub_...`); unique.",
        ),
        sa.Column(
            "gateway_customer_id",
            GATEWAY_ID,
            nullable=False,
            comment="The gateway's customer it bills.",
        ),
        sa.Column("tier_code", CODE, nullable=False, comment="The tier it gives the user now."),
        sa.Column(
            "status",
            STATUS,
            nullable=False,
            comment="The gateway's state: incomplete, incomplete_expired, trialing, active, "
            "past_due, unpaid, canceled or paused.",
        ),
        _moment("current_period_end", "End of the paid period (UTC)."),
        sa.Column(
            "cancel_at_period_end",
            sa.Boolean(),
            nullable=False,
            server_default=sa.false(),
            comment="Whether it ends at current_period_end instead of renewing.",
        ),
        sa.Column(
            "scheduled_tier_code",
            CODE,
            nullable=True,
            comment="A lower tier taking effect at current_period_end; NULL: none.",
        ),
        _moment(
            "past_due_since", "When a renewal first failed (UTC); the grace period counts from it."
        ),
        _moment("canceled_at", "When it was canceled (UTC)."),
        _moment("synced_at", "When the gateway state stored here was read (UTC)."),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_subscriptions"),
        _user_fk("subscriptions"),
        sa.UniqueConstraint(
            "gateway_subscription_id", name="uq_subscriptions_gateway_subscription_id"
        ),
        sa.CheckConstraint(
            f"status IN ({SUBSCRIPTION_STATUSES})", name=op.f("ck_subscriptions_status")
        ),
        comment="Subscriptions at the payment gateway as Portico last read them; "
        "an older read never overwrites a newer one (synced_at).",
    )
    op.create_index("ix_subscriptions_user_id_id", "subscriptions", ["user_id", "id"])
    op.create_index(
        "ix_subscriptions_status_past_due_since", "subscriptions", ["status", "past_due_since"]
    )
    op.create_index(
        "ix_subscriptions_scheduled_tier_code_current_period_end",
        "subscriptions",
        ["scheduled_tier_code", "current_period_end"],
    )


def _create_payments() -> None:
    op.create_table(
        "payments",
        sa.Column(
            "id", PAYMENT_ID, primary_key=True, autoincrement=True, comment="Id of the payment."
        ),
        sa.Column("user_id", sa.Integer(), nullable=False, comment="The payer (users.id)."),
        sa.Column(
            "reference",
            GATEWAY_ID,
            nullable=False,
            comment="The gateway object it stands for (invoice `in_...`, checkout `cs_...`); "
            "unique.",
        ),
        sa.Column(
            "kind",
            sa.String(length=16),
            nullable=False,
            comment="subscription (an invoice) or credit_pack.",
        ),
        sa.Column(
            "amount",
            sa.BigInteger(),
            nullable=False,
            comment="Amount in micro-units of `currency` (1 USD = 10^6).",
        ),
        sa.Column(
            "currency",
            sa.String(length=3),
            nullable=False,
            comment="ISO 4217 currency code, lower case (usd).",
        ),
        sa.Column(
            "status",
            STATUS,
            nullable=False,
            comment="succeeded, failed, refunded or partially_refunded.",
        ),
        sa.Column("product_code", CODE, nullable=True, comment="The credit pack bought, if any."),
        sa.Column("tier_code", CODE, nullable=True, comment="The tier paid for, if any."),
        sa.Column(
            "gateway_payment_id",
            GATEWAY_ID,
            nullable=True,
            comment="The gateway's payment intent (Stripe `pi_...`), which refunds name.",
        ),
        sa.Column(
            "gateway_subscription_id",
            GATEWAY_ID,
            nullable=True,
            comment="The subscription an invoice belongs to.",
        ),
        _amount("amount_refunded", "Refunded so far, in micro-units; at most amount."),
        _amount("credits_granted", "Credits the payment added to the ledger."),
        _amount("credits_reversed", "Credits taken back by refunds; at most credits_granted."),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_payments"),
        _user_fk("payments"),
        sa.UniqueConstraint("reference", name="uq_payments_reference"),
        sa.CheckConstraint(
            "kind IN ('subscription', 'credit_pack')", name=op.f("ck_payments_kind")
        ),
        sa.CheckConstraint(f"status IN ({PAYMENT_STATUSES})", name=op.f("ck_payments_status")),
        sa.CheckConstraint(
            "amount >= 0 AND amount_refunded >= 0 AND credits_granted >= 0 "
            "AND credits_reversed >= 0",
            name=op.f("ck_payments_amounts_not_negative"),
        ),
        sa.CheckConstraint(
            "amount_refunded <= amount", name=op.f("ck_payments_refund_within_amount")
        ),
        sa.CheckConstraint(
            "credits_reversed <= credits_granted", name=op.f("ck_payments_reversal_within_grant")
        ),
        comment="Payments: one per invoice or one-time checkout, recorded once "
        "(the reference is unique); refunds and reversed credits never exceed what "
        "was paid and granted.",
    )
    op.create_index("ix_payments_user_id_id", "payments", ["user_id", "id"])
    op.create_index("ix_payments_gateway_payment_id", "payments", ["gateway_payment_id"])


def _create_webhook_events() -> None:
    op.create_table(
        "webhook_events",
        sa.Column(
            "id",
            GATEWAY_ID,
            primary_key=True,
            comment="The gateway's event id (Stripe `evt_...`).",
        ),
        sa.Column(
            "type",
            sa.String(length=255),
            nullable=False,
            comment="The event type (invoice.paid...).",
        ),
        _moment("created", "When the gateway created it (UTC).", nullable=False),
        sa.Column(
            "payload",
            EVENT_PAYLOAD,
            nullable=False,
            comment="The event as the gateway sent it (JSON).",
        ),
        sa.Column(
            "source",
            sa.String(length=16),
            nullable=False,
            comment="webhook or reconcile: how it reached Portico.",
        ),
        sa.Column(
            "outcome",
            sa.String(length=16),
            nullable=False,
            comment="applied, ignored or failed (replay tries again).",
        ),
        _moment("received_at", "When Portico stored it (UTC).", nullable=False),
        _moment("processed_at", "When it was last processed (UTC)."),
        sa.Column(
            "error",
            sa.Text(),
            nullable=True,
            comment="Why it failed (type and message), if it did.",
        ),
        sa.Column(
            "attempts",
            sa.Integer(),
            nullable=False,
            server_default="1",
            comment="How many times it was processed.",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_events"),
        sa.CheckConstraint(
            "source IN ('webhook', 'reconcile')", name=op.f("ck_webhook_events_source")
        ),
        sa.CheckConstraint(
            "outcome IN ('applied', 'ignored', 'failed')", name=op.f("ck_webhook_events_outcome")
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_webhook_events_attempts_not_negative")),
        comment="Every verified payment gateway event, once (the id is the key), "
        "stored before its effects in the same transaction.",
    )
    op.create_index("ix_webhook_events_created_id", "webhook_events", ["created", "id"])


def _create_reconciliations() -> None:
    op.create_table(
        "payment_reconciliations",
        sa.Column(
            "id", sa.Integer(), primary_key=True, autoincrement=True, comment="Id of the run."
        ),
        _moment("since", "Start of the window listed (UTC).", nullable=False),
        _moment("until", "End of the window listed (UTC).", nullable=False),
        sa.Column(
            "found",
            sa.Integer(),
            nullable=False,
            comment="Events the gateway listed in the window.",
        ),
        sa.Column(
            "applied",
            sa.Integer(),
            nullable=False,
            comment="Of those, events that were new and stored.",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_payment_reconciliations"),
        sa.CheckConstraint(
            "found >= 0 AND applied >= 0",
            name=op.f("ck_payment_reconciliations_counts_not_negative"),
        ),
        comment="Reconciliation runs: which window of gateway events was listed.",
    )
    op.create_index("ix_payment_reconciliations_until", "payment_reconciliations", ["until"])


def upgrade() -> None:
    _create_customers()
    _create_checkouts()
    _create_subscriptions()
    _create_payments()
    _create_webhook_events()
    _create_reconciliations()


def downgrade() -> None:
    op.drop_index("ix_payment_reconciliations_until", table_name="payment_reconciliations")
    op.drop_table("payment_reconciliations")
    op.drop_index("ix_webhook_events_created_id", table_name="webhook_events")
    op.drop_table("webhook_events")
    op.drop_index("ix_payments_gateway_payment_id", table_name="payments")
    op.drop_index("ix_payments_user_id_id", table_name="payments")
    op.drop_table("payments")
    op.drop_index(
        "ix_subscriptions_scheduled_tier_code_current_period_end", table_name="subscriptions"
    )
    op.drop_index("ix_subscriptions_status_past_due_since", table_name="subscriptions")
    op.drop_index("ix_subscriptions_user_id_id", table_name="subscriptions")
    op.drop_table("subscriptions")
    op.drop_table("checkouts")
    op.drop_table("payment_customers")
