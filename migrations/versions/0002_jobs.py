"""jobs: the transactional outbox of background jobs (dead letters included).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JOB_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JOB_PAYLOAD = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", JOB_ID, primary_key=True, autoincrement=True, comment="Id of the job."),
        sa.Column(
            "name",
            sa.String(length=100),
            nullable=False,
            comment="Registered handler name, e.g. notifications.send_email.",
        ),
        sa.Column(
            "idempotency_key",
            sa.String(length=200),
            nullable=False,
            comment="Unique per name: enqueuing the same (name, key) again is a no-op.",
        ),
        sa.Column("payload", JOB_PAYLOAD, nullable=False, comment="JSON arguments of the handler."),
        sa.Column(
            "status",
            sa.String(length=16),
            nullable=False,
            server_default="pending",
            comment="pending, claimed, running, done or dead.",
        ),
        sa.Column(
            "attempts",
            sa.Integer(),
            nullable=False,
            server_default="0",
            comment="Runs started so far (reset when a dead job is retried).",
        ),
        sa.Column(
            "lease",
            sa.Integer(),
            nullable=False,
            server_default="0",
            comment="Number of the latest claim; only its holder may move the job on.",
        ),
        sa.Column(
            "available_at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="Earliest time the job may run (UTC).",
        ),
        sa.Column(
            "locked_until",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="While claimed or running: when the lease expires and the job is re-claimed.",
        ),
        sa.Column(
            "last_error",
            sa.Text(),
            nullable=True,
            comment="Type and message of the latest failure.",
        ),
        sa.Column(
            "finished_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="When the job became done or dead (UTC).",
        ),
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
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.UniqueConstraint("name", "idempotency_key", name="uq_jobs_name_idempotency_key"),
        sa.CheckConstraint(
            "status IN ('pending', 'claimed', 'running', 'done', 'dead')", name="ck_jobs_status"
        ),
        sa.CheckConstraint("attempts >= 0 AND lease >= 0", name="ck_jobs_counters"),
        comment="Transactional outbox of background jobs: written in the business "
        "transaction, claimed by the relay, run by a runner; dead letters included.",
    )
    op.create_index("ix_jobs_status_available_at", "jobs", ["status", "available_at"])
    op.create_index("ix_jobs_status_locked_until", "jobs", ["status", "locked_until"])
    op.create_index("ix_jobs_status_finished_at", "jobs", ["status", "finished_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_status_finished_at", table_name="jobs")
    op.drop_index("ix_jobs_status_locked_until", table_name="jobs")
    op.drop_index("ix_jobs_status_available_at", table_name="jobs")
    op.drop_table("jobs")
