"""notification_preferences: per-user email preferences.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _flag(name: str, default: bool, comment: str) -> sa.Column[bool]:
    return sa.Column(
        name,
        sa.Boolean(),
        nullable=False,
        server_default=sa.true() if default else sa.false(),
        comment=comment,
    )


def upgrade() -> None:
    op.create_table(
        "notification_preferences",
        sa.Column(
            "id",
            sa.Integer(),
            primary_key=True,
            autoincrement=True,
            comment="Id of the preferences row.",
        ),
        sa.Column(
            "user_id",
            sa.Integer(),
            nullable=False,
            comment="The account these preferences belong to (users.id); one row per account.",
        ),
        _flag("onboarding", True, "Welcome and getting-started mail."),
        _flag("product_updates", True, "News about product features."),
        _flag("usage_alerts", True, "Alerts about usage, limits and credits."),
        _flag("marketing", False, "Marketing mail; off until the user opts in."),
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
        sa.PrimaryKeyConstraint("id", name="pk_notification_preferences"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_notification_preferences_user_id_users",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("user_id", name="uq_notification_preferences_user_id"),
        comment="Which non-essential emails each user receives. Users without a row get "
        "the defaults; security mail is always sent and has no flag.",
    )


def downgrade() -> None:
    op.drop_table("notification_preferences")
