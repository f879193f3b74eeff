"""Records of refresh tokens (mobile and API sign-ins)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from adapters.sqlalchemy.records import Base
from adapters.sqlalchemy.types import UTCDateTime

REFRESH_TOKENS_HASH_UNIQUE = "uq_refresh_tokens_token_hash"


class RefreshTokenRecord(Base):
    """A refresh token (`core.identity.model.RefreshToken`), kept only as a hash."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (
        UniqueConstraint("token_hash", name=REFRESH_TOKENS_HASH_UNIQUE),
        Index("ix_refresh_tokens_family_id", "family_id"),
        Index("ix_refresh_tokens_user_id", "user_id"),
        Index("ix_refresh_tokens_expires_at", "expires_at"),
        {
            "comment": "Rotating refresh tokens of bearer sign-ins, in families (one per "
            "sign-in). Only the SHA-256 fingerprint of a token is stored."
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
        # Accounts are soft-deleted, so this only fires for a hard delete done by hand.
        ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        comment="The account the token signs in (users.id).",
    )
    family_id: Mapped[str] = mapped_column(
        String(64),
        nullable=False,
        comment="Public id of the sign-in the token descends from; reuse revokes the family.",
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
        comment="When the token was traded for its successor (UTC); NULL while unused.",
    )
    revoked_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime,
        nullable=True,
        comment="When the token was revoked with its family or user (UTC); NULL if not.",
    )
