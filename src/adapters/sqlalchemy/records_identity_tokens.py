"""Records of one-time tokens (email verification, password reset)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from adapters.sqlalchemy.records import Base
from adapters.sqlalchemy.types import UTCDateTime
from core.identity.model import TokenPurpose

ONE_TIME_TOKENS_HASH_UNIQUE = "uq_one_time_tokens_token_hash"

_PURPOSES = ", ".join(f"'{purpose.value}'" for purpose in TokenPurpose)


class OneTimeTokenRecord(Base):
    """A single-use token (`core.identity.model.OneTimeToken`), kept only as a hash."""

    __tablename__ = "one_time_tokens"
    __table_args__ = (
        UniqueConstraint("token_hash", name=ONE_TIME_TOKENS_HASH_UNIQUE),
        CheckConstraint(f"purpose IN ({_PURPOSES})", name="purpose"),
        Index("ix_one_time_tokens_user_id_purpose", "user_id", "purpose"),
        Index("ix_one_time_tokens_expires_at", "expires_at"),
        {
            "comment": "Single-use tokens for email verification and password reset. "
            "Only the SHA-256 fingerprint of a token is stored."
        },
    )

    id: Mapped[int] = mapped_column(
        Integer, primary_key=True, autoincrement=True, comment="Id of the token row."
    )
    token_hash: Mapped[str] = mapped_column(
        String(64), nullable=False, comment="SHA-256 hex fingerprint of the token; never the token."
    )
    user_id: Mapped[int] = mapped_column(
        Integer,
        # Tokens mean nothing without their account; accounts are soft-deleted, so this
        # only fires for a hard delete done by hand.
        ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        comment="The account the token acts on (users.id).",
    )
    purpose: Mapped[str] = mapped_column(
        String(32), nullable=False, comment="email_verification or password_reset."
    )
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, comment="When the token was issued (UTC)."
    )
    expires_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, comment="The token is refused from this instant on (UTC)."
    )
    used_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime,
        nullable=True,
        comment="When the token was used or invalidated (UTC); NULL while usable.",
    )
