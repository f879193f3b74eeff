"""Records of background jobs (`core.platform.jobs`): the transactional outbox.

One table holds every job from enqueue to done; dead letters are the rows whose status is
`dead` (listable and retryable in place, so a retry keeps the job's id and key).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from adapters.sqlalchemy.records import Base, TimestampMixin
from adapters.sqlalchemy.types import UTCDateTime
from core.platform.jobs import MAX_IDEMPOTENCY_KEY_LENGTH, MAX_JOB_NAME_LENGTH, JobStatus

# Jobs accumulate quickly: 64-bit ids on Postgres; SQLite autoincrements only an
# `INTEGER PRIMARY KEY` (64-bit there anyway).
JobId = BigInteger().with_variant(Integer(), "sqlite")
JobPayloadType = JSON().with_variant(JSONB(), "postgresql")

JOBS_NAME_KEY_UNIQUE = "uq_jobs_name_idempotency_key"

_STATUSES = ", ".join(f"'{status.value}'" for status in JobStatus)


class JobRecord(TimestampMixin, Base):
    """One job of the outbox, from enqueue to done (or dead)."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("name", "idempotency_key", name=JOBS_NAME_KEY_UNIQUE),
        CheckConstraint(f"status IN ({_STATUSES})", name="status"),
        CheckConstraint("attempts >= 0 AND lease >= 0", name="counters"),
        # Claims: pending jobs by due time, leased ones by lease expiry.
        Index("ix_jobs_status_available_at", "status", "available_at"),
        Index("ix_jobs_status_locked_until", "status", "locked_until"),
        # Dead-letter listing and the purge of done jobs.
        Index("ix_jobs_status_finished_at", "status", "finished_at"),
        {
            "comment": "Transactional outbox of background jobs: written in the business "
            "transaction, claimed by the relay, run by a runner; dead letters included."
        },
    )

    id: Mapped[int] = mapped_column(
        JobId, primary_key=True, autoincrement=True, comment="Id of the job."
    )
    name: Mapped[str] = mapped_column(
        String(MAX_JOB_NAME_LENGTH),
        nullable=False,
        comment="Registered handler name, e.g. notifications.send_email.",
    )
    idempotency_key: Mapped[str] = mapped_column(
        String(MAX_IDEMPOTENCY_KEY_LENGTH),
        nullable=False,
        comment="Unique per name: enqueuing the same (name, key) again is a no-op.",
    )
    payload: Mapped[dict[str, Any]] = mapped_column(
        JobPayloadType, nullable=False, comment="JSON arguments of the handler."
    )
    status: Mapped[str] = mapped_column(
        String(16),
        nullable=False,
        default=JobStatus.PENDING.value,
        server_default=JobStatus.PENDING.value,
        comment="pending, claimed, running, done or dead.",
    )
    attempts: Mapped[int] = mapped_column(
        Integer,
        nullable=False,
        default=0,
        server_default="0",
        comment="Runs started so far (reset when a dead job is retried).",
    )
    lease: Mapped[int] = mapped_column(
        Integer,
        nullable=False,
        default=0,
        server_default="0",
        comment="Number of the latest claim; only its holder may move the job on.",
    )
    available_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, comment="Earliest time the job may run (UTC)."
    )
    locked_until: Mapped[datetime | None] = mapped_column(
        UTCDateTime,
        nullable=True,
        comment="While claimed or running: when the lease expires and the job is re-claimed.",
    )
    last_error: Mapped[str | None] = mapped_column(
        Text, nullable=True, comment="Type and message of the latest failure."
    )
    finished_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, nullable=True, comment="When the job became done or dead (UTC)."
    )
