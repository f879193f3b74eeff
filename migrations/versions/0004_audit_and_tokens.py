"""audit_log and one_time_tokens: the audit trail; verification and reset tokens.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AUDIT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
AUDIT_DETAILS = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _utc(name: str, comment: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, comment=comment)


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", AUDIT_ID, primary_key=True, autoincrement=True, comment="Id of the entry."),
        _utc("occurred_at", "When the action happened (UTC)."),
        sa.Column(
            "actor_id",
            sa.Integer(),
            nullable=True,
            comment="Id of the user who acted (users.id, not enforced); NULL when unknown.",
        ),
        sa.Column(
            "action",
            sa.String(length=64),
            nullable=False,
            comment="Dotted action name, e.g. auth.login.",
        ),
        sa.Column("outcome", sa.String(length=16), nullable=False, comment="success or failure."),
        sa.Column(
            "target_type",
            sa.String(length=32),
            nullable=True,
            comment="Kind of the object acted on, e.g. user, session.",
        ),
        sa.Column(
            "target_id",
            sa.String(length=64),
            nullable=True,
            comment="Public id of the object acted on.",
        ),
        sa.Column(
            "ip",
            sa.String(length=64),
            nullable=True,
            comment="Client address the request came from.",
        ),
        sa.Column(
            "user_agent",
            sa.String(length=512),
            nullable=True,
            comment="Client User-Agent header, truncated.",
        ),
        sa.Column(
            "details",
            AUDIT_DETAILS,
            nullable=False,
            comment="Scalar facts (ids, reasons, counts); checked against secrets before writing.",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
        sa.CheckConstraint("outcome IN ('success', 'failure')", name="ck_audit_log_outcome"),
        comment="Append-only trail of security- and money-relevant actions. Never holds a "
        "password, token, session id or hash.",
    )
    op.create_index("ix_audit_log_occurred_at", "audit_log", ["occurred_at"])
    op.create_index("ix_audit_log_actor_id_occurred_at", "audit_log", ["actor_id", "occurred_at"])
    op.create_index("ix_audit_log_action_occurred_at", "audit_log", ["action", "occurred_at"])
    op.create_index("ix_audit_log_target_type_target_id", "audit_log", ["target_type", "target_id"])

    op.create_table(
        "one_time_tokens",
        sa.Column(
            "id",
            sa.Integer(),
            primary_key=True,
            autoincrement=True,
            comment="Id of the token row.",
        ),
        sa.Column(
            "token_hash",
            sa.String(length=64),
            nullable=False,
            comment="SHA-256 hex fingerprint of the token; never the token.",
        ),
        sa.Column(
            "user_id",
            sa.Integer(),
            nullable=False,
            comment="The account the token acts on (users.id).",
        ),
        sa.Column(
            "purpose",
            sa.String(length=32),
            nullable=False,
            comment="email_verification or password_reset.",
        ),
        _utc("created_at", "When the token was issued (UTC)."),
        _utc("expires_at", "The token is refused from this instant on (UTC)."),
        _utc(
            "used_at",
            "When the token was used or invalidated (UTC); NULL while usable.",
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("id", name="pk_one_time_tokens"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_one_time_tokens_user_id_users",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("token_hash", name="uq_one_time_tokens_token_hash"),
        sa.CheckConstraint(
            "purpose IN ('email_verification', 'password_reset')",
            name="ck_one_time_tokens_purpose",
        ),
        comment="Single-use tokens for email verification and password reset. Only the "
        "SHA-256 fingerprint of a token is stored.",
    )
    op.create_index("ix_one_time_tokens_user_id_purpose", "one_time_tokens", ["user_id", "purpose"])
    op.create_index("ix_one_time_tokens_expires_at", "one_time_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_one_time_tokens_expires_at", table_name="one_time_tokens")
    op.drop_index("ix_one_time_tokens_user_id_purpose", table_name="one_time_tokens")
    op.drop_table("one_time_tokens")
    op.drop_index("ix_audit_log_target_type_target_id", table_name="audit_log")
    op.drop_index("ix_audit_log_action_occurred_at", table_name="audit_log")
    op.drop_index("ix_audit_log_actor_id_occurred_at", table_name="audit_log")
    op.drop_index("ix_audit_log_occurred_at", table_name="audit_log")
    op.drop_table("audit_log")
