"""refresh_tokens and users.tokens_valid_after: bearer sign-ins for mobile and API clients.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc(name: str, comment: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, comment=comment)


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            _utc(
                "tokens_valid_after",
                "Access tokens issued before this instant are refused (logout-all, password "
                "change or reset); NULL when never set.",
                nullable=True,
            )
        )

    op.create_table(
        "refresh_tokens",
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
            comment="The account the token signs in (users.id).",
        ),
        sa.Column(
            "family_id",
            sa.String(length=64),
            nullable=False,
            comment="Public id of the sign-in the token descends from; reuse revokes the family.",
        ),
        _utc("created_at", "When the token was issued (UTC)."),
        _utc("expires_at", "The token is refused from this instant on (UTC)."),
        _utc(
            "used_at",
            "When the token was traded for its successor (UTC); NULL while unused.",
            nullable=True,
        ),
        _utc(
            "revoked_at",
            "When the token was revoked with its family or user (UTC); NULL if not.",
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("id", name="pk_refresh_tokens"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_refresh_tokens_user_id_users",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("token_hash", name="uq_refresh_tokens_token_hash"),
        comment="Rotating refresh tokens of bearer sign-ins, in families (one per sign-in). "
        "Only the SHA-256 fingerprint of a token is stored.",
    )
    op.create_index("ix_refresh_tokens_family_id", "refresh_tokens", ["family_id"])
    op.create_index("ix_refresh_tokens_user_id", "refresh_tokens", ["user_id"])
    op.create_index("ix_refresh_tokens_expires_at", "refresh_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_refresh_tokens_expires_at", table_name="refresh_tokens")
    op.drop_index("ix_refresh_tokens_user_id", table_name="refresh_tokens")
    op.drop_index("ix_refresh_tokens_family_id", table_name="refresh_tokens")
    op.drop_table("refresh_tokens")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("tokens_valid_after")
