"""Records of notification preferences (one row per user who changed the defaults)."""

from __future__ import annotations

from sqlalchemy import Boolean, ForeignKey, Integer, UniqueConstraint, false, true
from sqlalchemy.orm import Mapped, mapped_column

from adapters.sqlalchemy.records import Base, TimestampMixin

NOTIFICATION_PREFERENCES_USER_UNIQUE = "uq_notification_preferences_user_id"
NOTIFICATION_PREFERENCES_USER_FK = "fk_notification_preferences_user_id_users"


class NotificationPreferencesRecord(TimestampMixin, Base):
    """A user's email preferences (`core.notifications.model.NotificationPreferences`).

    The server defaults are the model's defaults, so a row and "no row" mean the same
    until the user changes something. Security mail has no column: it is always sent.
    """

    __tablename__ = "notification_preferences"
    __table_args__ = (
        UniqueConstraint("user_id", name=NOTIFICATION_PREFERENCES_USER_UNIQUE),
        {
            "comment": "Which non-essential emails each user receives. Users without a "
            "row get the defaults; security mail is always sent and has no flag."
        },
    )

    id: Mapped[int] = mapped_column(
        Integer, primary_key=True, autoincrement=True, comment="Id of the preferences row."
    )
    user_id: Mapped[int] = mapped_column(
        Integer,
        # Preferences mean nothing without their account; accounts are soft-deleted, so
        # this only fires for a hard delete (e.g. a data-erasure request).
        ForeignKey("users.id", ondelete="CASCADE", name=NOTIFICATION_PREFERENCES_USER_FK),
        nullable=False,
        comment="The account these preferences belong to (users.id); one row per account.",
    )
    onboarding: Mapped[bool] = mapped_column(
        Boolean,
        nullable=False,
        default=True,
        server_default=true(),
        comment="Welcome and getting-started mail.",
    )
    product_updates: Mapped[bool] = mapped_column(
        Boolean,
        nullable=False,
        default=True,
        server_default=true(),
        comment="News about product features.",
    )
    usage_alerts: Mapped[bool] = mapped_column(
        Boolean,
        nullable=False,
        default=True,
        server_default=true(),
        comment="Alerts about usage, limits and credits.",
    )
    marketing: Mapped[bool] = mapped_column(
        Boolean,
        nullable=False,
        default=False,
        server_default=false(),
        comment="Marketing mail; off until the user opts in.",
    )
