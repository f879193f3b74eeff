"""oauth_identities: provider accounts (GitHub, Google) linked to users.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "oauth_identities",
        sa.Column(
            "id",
            sa.Integer(),
            primary_key=True,
            autoincrement=True,
            comment="Id of the link.",
        ),
        sa.Column(
            "user_id",
            sa.Integer(),
            nullable=False,
            comment="The account the provider account signs in to (users.id).",
        ),
        sa.Column(
            "provider",
            sa.String(length=32),
            nullable=False,
            comment="Provider name, lower case (github, google).",
        ),
        sa.Column(
            "subject",
            sa.String(length=255),
            nullable=False,
            comment="The provider's stable id of the account (GitHub user id, OpenID `sub`).",
        ),
        sa.Column(
            "email",
            sa.String(length=254),
            nullable=True,
            comment="The verified email the provider reported when the link was made.",
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="When the link was made (UTC).",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_oauth_identities"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_oauth_identities_user_id_users",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("provider", "subject", name="uq_oauth_identities_provider_subject"),
        comment="Provider accounts (GitHub, Google) linked to users; sign-in goes by "
        "provider and subject, never by email.",
    )
    op.create_index("ix_oauth_identities_user_id", "oauth_identities", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_oauth_identities_user_id", table_name="oauth_identities")
    op.drop_table("oauth_identities")
