"""Records of the billing catalog: tiers, products, what users bought, and enterprise
overrides (`core.billing.model`).

Features are JSON lists of codes, limits JSON objects `{name: {"amount": n, "period":
"day"}}`, limit boosts `{name: n}` (SQLAlchemy's `JSON`: `json` on Postgres, text on
SQLite); the repositories turn them into the core's sets and `LimitSpec`s. Money is
BIGINT micro-units.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from adapters.sqlalchemy.records import Base, TimestampMixin
from adapters.sqlalchemy.types import UTCDateTime
from core.billing.model import ProductKind, PurchaseStatus

TIERS_PK = "pk_tiers"
TIERS_GATEWAY_PRICE_UNIQUE = "uq_tiers_gateway_price_id"
PRODUCTS_PK = "pk_products"
PRODUCTS_GATEWAY_PRICE_UNIQUE = "uq_products_gateway_price_id"
USER_PRODUCTS_REFERENCE_UNIQUE = "uq_user_products_user_id_reference"
USER_PRODUCTS_USER_FK = "fk_user_products_user_id_users"
USER_PRODUCTS_PRODUCT_FK = "fk_user_products_product_code_products"
ENTERPRISE_OVERRIDES_USER_FK = "fk_enterprise_overrides_user_id_users"

CODE_LENGTH = 64  # `core.billing.model.check_code`
NAME_LENGTH = 200  # `core.billing.model.MAX_NAME_LENGTH`
PRICE_NOTE_LENGTH = 1000


def _one_of(column: str, values: type[ProductKind] | type[PurchaseStatus]) -> str:
    return f"{column} IN ({', '.join(repr(str(v.value)) for v in values)})"


def _code(comment: str) -> Mapped[str]:
    return mapped_column(String(CODE_LENGTH), primary_key=True, comment=comment)


def _name() -> Mapped[str]:
    return mapped_column(String(NAME_LENGTH), nullable=False, comment="Name shown to people.")


def _price() -> Mapped[int]:
    return mapped_column(
        BigInteger, nullable=False, comment="Price in micro-units of `currency` (1 USD = 10^6)."
    )


def _currency() -> Mapped[str]:
    return mapped_column(
        String(3), nullable=False, comment="ISO 4217 currency code, lower case (usd)."
    )


def _features(comment: str) -> Mapped[list[str]]:
    return mapped_column(JSON, nullable=False, default=list, comment=comment)


def _gateway_price_id(what: str) -> Mapped[str | None]:
    return mapped_column(
        String(255),
        nullable=True,
        comment=f"The payment gateway's price id for this {what} (Stripe `price_...`); "
        "NULL when not sold there. Unique.",
    )


class TierRecord(TimestampMixin, Base):
    """A plan (`core.billing.model.Tier`)."""

    __tablename__ = "tiers"
    __table_args__ = (
        UniqueConstraint("gateway_price_id", name=TIERS_GATEWAY_PRICE_UNIQUE),
        CheckConstraint("price >= 0", name="price_not_negative"),
        {"comment": "Plan tiers; every account is on one (users.tier_code)."},
    )

    code: Mapped[str] = _code("Stable code of the tier (free, pro, enterprise).")
    name: Mapped[str] = _name()
    price: Mapped[int] = _price()
    currency: Mapped[str] = _currency()
    features: Mapped[list[str]] = _features("Feature codes the tier grants (JSON list).")
    limits: Mapped[dict[str, Any]] = mapped_column(
        JSON,
        nullable=False,
        default=dict,
        comment='Limits by name (JSON object {"messages": {"amount": 50, "period": "day"}}).',
    )
    gateway_price_id: Mapped[str | None] = _gateway_price_id("tier's monthly price")
    public: Mapped[bool] = mapped_column(
        Boolean,
        nullable=False,
        default=True,
        server_default=true(),
        comment="Whether GET /api/v1/tiers lists the tier.",
    )
    rank: Mapped[int] = mapped_column(
        Integer,
        nullable=False,
        default=0,
        server_default="0",
        comment="Order of the tiers; an upgrade goes to a higher rank.",
    )


class ProductRecord(TimestampMixin, Base):
    """Something sold beside the tiers (`core.billing.model.Product`)."""

    __tablename__ = "products"
    __table_args__ = (
        UniqueConstraint("gateway_price_id", name=PRODUCTS_GATEWAY_PRICE_UNIQUE),
        CheckConstraint("price >= 0", name="price_not_negative"),
        CheckConstraint("credits >= 0", name="credits_not_negative"),
        CheckConstraint(_one_of("kind", ProductKind), name="kind_known"),
        {"comment": "Products sold beside the tiers: credit packs and add-ons."},
    )

    code: Mapped[str] = _code("Stable code of the product (small, large, booster).")
    name: Mapped[str] = _name()
    kind: Mapped[str] = mapped_column(
        String(16),
        nullable=False,
        comment="credit_pack (grants credits) or add_on (grants features, raises limits).",
    )
    price: Mapped[int] = _price()
    currency: Mapped[str] = _currency()
    recurring: Mapped[bool] = mapped_column(
        Boolean,
        nullable=False,
        default=False,
        server_default=false(),
        comment="Whether it is paid per period (a subscription) instead of once.",
    )
    credits: Mapped[int] = mapped_column(
        BigInteger,
        nullable=False,
        default=0,
        server_default="0",
        comment="Credits one purchase grants (credit packs).",
    )
    features: Mapped[list[str]] = _features("Feature codes an active purchase grants (JSON list).")
    limit_boosts: Mapped[dict[str, int]] = mapped_column(
        JSON,
        nullable=False,
        default=dict,
        comment='What an active purchase adds to limits, by name (JSON object {"messages": 100}).',
    )
    gateway_price_id: Mapped[str | None] = _gateway_price_id("product")
    active: Mapped[bool] = mapped_column(
        Boolean,
        nullable=False,
        default=True,
        server_default=true(),
        comment="Whether it is on sale; purchases of an inactive product stay valid.",
    )


class UserProductRecord(TimestampMixin, Base):
    """A product a user bought (`core.billing.model.Purchase`)."""

    __tablename__ = "user_products"
    __table_args__ = (
        UniqueConstraint("user_id", "reference", name=USER_PRODUCTS_REFERENCE_UNIQUE),
        CheckConstraint("quantity >= 1", name="quantity_positive"),
        CheckConstraint(_one_of("status", PurchaseStatus), name="status_known"),
        {
            "comment": "Products users bought; a reference (checkout id, ticket) is "
            "recorded once per user, so retries cannot record a purchase twice."
        },
    )

    id: Mapped[int] = mapped_column(
        Integer, primary_key=True, autoincrement=True, comment="Id of the purchase."
    )
    user_id: Mapped[int] = mapped_column(
        Integer,
        # No cascade: a purchase is a record of a payment and outlives an erasure of
        # the account only by a deliberate step.
        ForeignKey("users.id", name=USER_PRODUCTS_USER_FK),
        nullable=False,
        comment="The account that bought it (users.id).",
    )
    product_code: Mapped[str] = mapped_column(
        String(CODE_LENGTH),
        ForeignKey("products.code", name=USER_PRODUCTS_PRODUCT_FK),
        nullable=False,
        comment="What was bought (products.code).",
    )
    reference: Mapped[str] = mapped_column(
        String(255),
        nullable=False,
        comment="What bought it (a checkout session id, a support ticket); unique per user.",
    )
    quantity: Mapped[int] = mapped_column(
        Integer, nullable=False, default=1, server_default="1", comment="How many, at least 1."
    )
    status: Mapped[str] = mapped_column(
        String(16), nullable=False, comment="active, canceled or refunded."
    )
    purchased_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, comment="When it was bought (UTC)."
    )
    expires_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime,
        nullable=True,
        comment="End of the paid period of a recurring product (UTC); NULL: for good.",
    )


class EnterpriseOverrideRecord(TimestampMixin, Base):
    """Per-user enterprise terms (`core.billing.model.EnterpriseOverride`)."""

    __tablename__ = "enterprise_overrides"
    __table_args__ = (
        {"comment": "Per-user terms that win over the tier and products; one row per user."},
    )

    user_id: Mapped[int] = mapped_column(
        Integer,
        # The terms mean nothing without their account; accounts are soft-deleted, so
        # this only fires for a hard delete.
        ForeignKey("users.id", ondelete="CASCADE", name=ENTERPRISE_OVERRIDES_USER_FK),
        primary_key=True,
        autoincrement=False,
        comment="The account these terms are for (users.id).",
    )
    features: Mapped[list[str]] = _features("Feature codes granted on top (JSON list).")
    limits: Mapped[dict[str, Any]] = mapped_column(
        JSON,
        nullable=False,
        default=dict,
        comment='Limits that replace the computed ones (JSON object {"messages": '
        '{"amount": 5000, "period": "day"}}).',
    )
    price_note: Mapped[str] = mapped_column(
        String(PRICE_NOTE_LENGTH),
        nullable=False,
        default="",
        server_default="",
        comment="The agreed price, for people (invoices are the gateway's).",
    )
