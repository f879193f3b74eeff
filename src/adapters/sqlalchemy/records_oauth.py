"""Records of OAuth links: which provider account signs in to which user."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from adapters.sqlalchemy.records import Base
from adapters.sqlalchemy.types import UTCDateTime

OAUTH_IDENTITIES_PROVIDER_SUBJECT_UNIQUE = "uq_oauth_identities_provider_subject"


class OAuthIdentityRecord(Base):
    """A provider account linked to a user (`core.identity.oauth_model.OAuthIdentity`)."""

    __tablename__ = "oauth_identities"
    __table_args__ = (
        UniqueConstraint("provider", "subject", name=OAUTH_IDENTITIES_PROVIDER_SUBJECT_UNIQUE),
        Index("ix_oauth_identities_user_id", "user_id"),
        {
            "comment": "Provider accounts (GitHub, Google) linked to users; sign-in goes by "
            "provider and subject, never by email."
        },
    )

    id: Mapped[int] = mapped_column(
        Integer, primary_key=True, autoincrement=True, comment="Id of the link."
    )
    user_id: Mapped[int] = mapped_column(
        Integer,
        # Accounts are soft-deleted, so this only fires for a hard delete done by hand.
        ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        comment="The account the provider account signs in to (users.id).",
    )
    provider: Mapped[str] = mapped_column(
        String(32), nullable=False, comment="Provider name, lower case (github, google)."
    )
    subject: Mapped[str] = mapped_column(
        String(255),
        nullable=False,
        comment="The provider's stable id of the account (GitHub user id, OpenID `sub`).",
    )
    email: Mapped[str | None] = mapped_column(
        String(254),
        nullable=True,
        comment="The verified email the provider reported when the link was made.",
    )
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, comment="When the link was made (UTC)."
    )
