"""tiers, products, user_products, enterprise_overrides: the billing catalog, what users
bought, and per-user enterprise terms.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CODE = sa.String(length=64)


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


def _catalog_columns(code_comment: str, features_comment: str) -> list[sa.Column[object]]:
    return [
        sa.Column("code", CODE, primary_key=True, comment=code_comment),
        sa.Column("name", sa.String(length=200), nullable=False, comment="Name shown to people."),
        sa.Column(
            "price",
            sa.BigInteger(),
            nullable=False,
            comment="Price in micro-units of `currency` (1 USD = 10^6).",
        ),
        sa.Column(
            "currency",
            sa.String(length=3),
            nullable=False,
            comment="ISO 4217 currency code, lower case (usd).",
        ),
        sa.Column("features", sa.JSON(), nullable=False, comment=features_comment),
    ]


def _gateway_price_id(what: str) -> sa.Column[object]:
    return sa.Column(
        "gateway_price_id",
        sa.String(length=255),
        nullable=True,
        comment=f"The payment gateway's price id for this {what} (Stripe `price_...`); "
        "NULL when not sold there. Unique.",
    )


def upgrade() -> None:
    op.create_table(
        "tiers",
        *_catalog_columns(
            "Stable code of the tier (free, pro, enterprise).",
            "Feature codes the tier grants (JSON list).",
        ),
        sa.Column(
            "limits",
            sa.JSON(),
            nullable=False,
            comment='Limits by name (JSON object {"messages": {"amount": 50, "period": "day"}}).',
        ),
        _gateway_price_id("tier's monthly price"),
        sa.Column(
            "public",
            sa.Boolean(),
            nullable=False,
            server_default=sa.true(),
            comment="Whether GET /api/v1/tiers lists the tier.",
        ),
        sa.Column(
            "rank",
            sa.Integer(),
            nullable=False,
            server_default="0",
            comment="Order of the tiers; an upgrade goes to a higher rank.",
        ),
        *_timestamps(),
        sa.PrimaryKeyConstraint("code", name="pk_tiers"),
        sa.UniqueConstraint("gateway_price_id", name="uq_tiers_gateway_price_id"),
        sa.CheckConstraint("price >= 0", name=op.f("ck_tiers_price_not_negative")),
        comment="Plan tiers; every account is on one (users.tier_code).",
    )
    op.create_table(
        "products",
        *_catalog_columns(
            "Stable code of the product (small, large, booster).",
            "Feature codes an active purchase grants (JSON list).",
        ),
        sa.Column(
            "kind",
            sa.String(length=16),
            nullable=False,
            comment="credit_pack (grants credits) or add_on (grants features, raises limits).",
        ),
        sa.Column(
            "recurring",
            sa.Boolean(),
            nullable=False,
            server_default=sa.false(),
            comment="Whether it is paid per period (a subscription) instead of once.",
        ),
        sa.Column(
            "credits",
            sa.BigInteger(),
            nullable=False,
            server_default="0",
            comment="Credits one purchase grants (credit packs).",
        ),
        sa.Column(
            "limit_boosts",
            sa.JSON(),
            nullable=False,
            comment="What an active purchase adds to limits, by name "
            '(JSON object {"messages": 100}).',
        ),
        _gateway_price_id("product"),
        sa.Column(
            "active",
            sa.Boolean(),
            nullable=False,
            server_default=sa.true(),
            comment="Whether it is on sale; purchases of an inactive product stay valid.",
        ),
        *_timestamps(),
        sa.PrimaryKeyConstraint("code", name="pk_products"),
        sa.UniqueConstraint("gateway_price_id", name="uq_products_gateway_price_id"),
        sa.CheckConstraint("price >= 0", name=op.f("ck_products_price_not_negative")),
        sa.CheckConstraint("credits >= 0", name=op.f("ck_products_credits_not_negative")),
        sa.CheckConstraint(
            "kind IN ('credit_pack', 'add_on')", name=op.f("ck_products_kind_known")
        ),
        comment="Products sold beside the tiers: credit packs and add-ons.",
    )
    op.create_table(
        "user_products",
        sa.Column(
            "id", sa.Integer(), primary_key=True, autoincrement=True, comment="Id of the purchase."
        ),
        sa.Column(
            "user_id",
            sa.Integer(),
            nullable=False,
            comment="The account that bought it (users.id).",
        ),
        sa.Column("product_code", CODE, nullable=False, comment="What was bought (products.code)."),
        sa.Column(
            "reference",
            sa.String(length=255),
            nullable=False,
            comment="What bought it (a checkout session id, a support ticket); unique per user.",
        ),
        sa.Column(
            "quantity",
            sa.Integer(),
            nullable=False,
            server_default="1",
            comment="How many, at least 1.",
        ),
        sa.Column(
            "status", sa.String(length=16), nullable=False, comment="active, canceled or refunded."
        ),
        sa.Column(
            "purchased_at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="When it was bought (UTC).",
        ),
        sa.Column(
            "expires_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="End of the paid period of a recurring product (UTC); NULL: for good.",
        ),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_user_products"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_user_products_user_id_users"),
        sa.ForeignKeyConstraint(
            ["product_code"], ["products.code"], name="fk_user_products_product_code_products"
        ),
        sa.UniqueConstraint("user_id", "reference", name="uq_user_products_user_id_reference"),
        sa.CheckConstraint("quantity >= 1", name=op.f("ck_user_products_quantity_positive")),
        sa.CheckConstraint(
            "status IN ('active', 'canceled', 'refunded')",
            name=op.f("ck_user_products_status_known"),
        ),
        comment="Products users bought; a reference (checkout id, ticket) is recorded once "
        "per user, so retries cannot record a purchase twice.",
    )
    op.create_table(
        "enterprise_overrides",
        sa.Column(
            "user_id",
            sa.Integer(),
            primary_key=True,
            autoincrement=False,
            comment="The account these terms are for (users.id).",
        ),
        sa.Column(
            "features",
            sa.JSON(),
            nullable=False,
            comment="Feature codes granted on top (JSON list).",
        ),
        sa.Column(
            "limits",
            sa.JSON(),
            nullable=False,
            comment='Limits that replace the computed ones (JSON object {"messages": '
            '{"amount": 5000, "period": "day"}}).',
        ),
        sa.Column(
            "price_note",
            sa.String(length=1000),
            nullable=False,
            server_default="",
            comment="The agreed price, for people (invoices are the gateway's).",
        ),
        *_timestamps(),
        sa.PrimaryKeyConstraint("user_id", name="pk_enterprise_overrides"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_enterprise_overrides_user_id_users",
            ondelete="CASCADE",
        ),
        comment="Per-user terms that win over the tier and products; one row per user.",
    )


def downgrade() -> None:
    op.drop_table("enterprise_overrides")
    op.drop_table("user_products")
    op.drop_table("products")
    op.drop_table("tiers")
