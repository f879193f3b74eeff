"""Records of the payment gateway's events (`core.payments.model`): the event log, kept
for good, and the reconciliation runs that fetch events which never arrived."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from adapters.sqlalchemy.records import Base
from adapters.sqlalchemy.records_payments import GATEWAY_ID_LENGTH, moment, one_of
from core.payments.model import EventOutcome, EventSource

# As the jobs' payload: JSONB on Postgres (compact, validated), JSON text on SQLite.
EventPayloadType = JSON().with_variant(JSONB(), "postgresql")

WEBHOOK_EVENTS_PK = "pk_webhook_events"


class WebhookEventRecord(Base):
    """A gateway event as received, kept for good (`core.payments.model.StoredEvent`)."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        CheckConstraint(one_of("source", EventSource), name="source"),
        CheckConstraint(one_of("outcome", EventOutcome), name="outcome"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        # The event log, newest first (admin, replay).
        Index("ix_webhook_events_created_id", "created", "id"),
        {
            "comment": "Every verified payment gateway event, once (the id is the key), "
            "stored before its effects in the same transaction."
        },
    )

    id: Mapped[str] = mapped_column(
        String(GATEWAY_ID_LENGTH),
        primary_key=True,
        comment="The gateway's event id (Stripe `evt_...`).",
    )
    type: Mapped[str] = mapped_column(
        String(255), nullable=False, comment="The event type (invoice.paid...)."
    )
    created: Mapped[datetime] = moment("When the gateway created it (UTC).", nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(
        EventPayloadType, nullable=False, comment="The event as the gateway sent it (JSON)."
    )
    source: Mapped[str] = mapped_column(
        String(16), nullable=False, comment="webhook or reconcile: how it reached Portico."
    )
    outcome: Mapped[str] = mapped_column(
        String(16), nullable=False, comment="applied, ignored or failed (replay tries again)."
    )
    received_at: Mapped[datetime] = moment("When Portico stored it (UTC).", nullable=False)
    processed_at: Mapped[datetime | None] = moment("When it was last processed (UTC).")
    error: Mapped[str | None] = mapped_column(
        Text, nullable=True, comment="Why it failed (type and message), if it did."
    )
    attempts: Mapped[int] = mapped_column(
        Integer,
        nullable=False,
        default=1,
        server_default="1",
        comment="How many times it was processed.",
    )


class ReconciliationRecord(Base):
    """One `reconcile` run (`core.payments.model.Reconciliation`)."""

    __tablename__ = "payment_reconciliations"
    __table_args__ = (
        CheckConstraint("found >= 0 AND applied >= 0", name="counts_not_negative"),
        # `last()`: the run with the latest `until`.
        Index("ix_payment_reconciliations_until", "until"),
        {"comment": "Reconciliation runs: which window of gateway events was listed."},
    )

    id: Mapped[int] = mapped_column(
        Integer, primary_key=True, autoincrement=True, comment="Id of the run."
    )
    since: Mapped[datetime] = moment("Start of the window listed (UTC).", nullable=False)
    until: Mapped[datetime] = moment("End of the window listed (UTC).", nullable=False)
    found: Mapped[int] = mapped_column(
        Integer, nullable=False, comment="Events the gateway listed in the window."
    )
    applied: Mapped[int] = mapped_column(
        Integer, nullable=False, comment="Of those, events that were new and stored."
    )
