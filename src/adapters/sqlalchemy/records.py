"""Declarative records: the tables. Repositories turn them into core entities and back.

Constraint names follow one convention so Alembic migrations are stable and repositories
can recognise a violated constraint by name (see `identity.py`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Boolean, Index, MetaData, String, UniqueConstraint, false, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from adapters.sqlalchemy.types import UTCDateTime
from core.identity.model import DEFAULT_TIER

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Base of every Portico record; its metadata is what migrations are checked against."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class TimestampMixin:
    """`created_at` and `updated_at`, set in Python (UTC) and defaulted by the server."""

    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime,
        default=utcnow,
        server_default=func.now(),
        nullable=False,
        comment="When the row was created (UTC).",
    )
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime,
        default=utcnow,
        onupdate=utcnow,
        server_default=func.now(),
        nullable=False,
        comment="When the row was last changed (UTC).",
    )


class SoftDeleteMixin:
    """`deleted_at`: set instead of deleting the row; repositories hide such rows."""

    deleted_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime,
        nullable=True,
        default=None,
        comment="When the row was soft-deleted (UTC); NULL while it is live.",
    )


USERS_EMAIL_UNIQUE = "uq_users_email"
USERS_USERNAME_UNIQUE = "uq_users_username"


class UserRecord(TimestampMixin, SoftDeleteMixin, Base):
    """An account (`core.identity.model.User`)."""

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("email", name=USERS_EMAIL_UNIQUE),
        UniqueConstraint("username", name=USERS_USERNAME_UNIQUE),
        Index("ix_users_created_at", "created_at"),
        {"comment": "Accounts. Soft-deleted accounts keep their email and username."},
    )

    id: Mapped[int] = mapped_column(
        primary_key=True, autoincrement=True, comment="Public integer id of the account."
    )
    email: Mapped[str] = mapped_column(
        String(254), nullable=False, comment="Email address, normalised to lower case."
    )
    username: Mapped[str] = mapped_column(
        String(32), nullable=False, comment="Unique handle, compared exactly."
    )
    password_hash: Mapped[str] = mapped_column(
        String(255), nullable=False, comment="argon2id hash of the password; never the password."
    )
    tier_code: Mapped[str] = mapped_column(
        String(32),
        nullable=False,
        default=DEFAULT_TIER,
        server_default=DEFAULT_TIER,
        comment="Code of the plan tier the account is on.",
    )
    is_superuser: Mapped[bool] = mapped_column(
        Boolean,
        nullable=False,
        default=False,
        server_default=false(),
        comment="Whether the account may use the admin panel.",
    )
    email_verified: Mapped[bool] = mapped_column(
        Boolean,
        nullable=False,
        default=False,
        server_default=false(),
        comment="Whether the email address has been confirmed.",
    )
    tokens_valid_after: Mapped[datetime | None] = mapped_column(
        UTCDateTime,
        nullable=True,
        default=None,
        comment="Access tokens issued before this instant are refused (logout-all, password "
        "change or reset); NULL when never set.",
    )
    deactivated_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime,
        nullable=True,
        default=None,
        comment="When an operator deactivated the account (no sign-in, no token); NULL "
        "while active.",
    )
