"""The SQL side of notifications: per-user preferences."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.sqlalchemy.errors import ConstraintErrors, database_errors, violated_constraint
from adapters.sqlalchemy.records import Base, utcnow
from adapters.sqlalchemy.records_notifications import (
    NOTIFICATION_PREFERENCES_USER_FK,
    NotificationPreferencesRecord,
)
from adapters.sqlalchemy.repository import SqlAlchemyRepository
from adapters.sqlalchemy.returning import is_sqlite_foreign_key_error
from core.identity.errors import UserNotFoundError
from core.notifications.model import PREFERENCE_FLAGS, NotificationPreferences
from core.notifications.ports import NotificationPreferencesRepository

NOTIFICATION_CONSTRAINT_ERRORS: ConstraintErrors = {
    NOTIFICATION_PREFERENCES_USER_FK: UserNotFoundError,
}

# Both dialects have INSERT ... ON CONFLICT DO UPDATE, each in its own Insert class.
_INSERTS: dict[str, Callable[..., postgresql.Insert | sqlite.Insert]] = {
    "postgresql": postgresql.insert,
    "sqlite": sqlite.insert,
}


def _to_preferences(record: NotificationPreferencesRecord) -> NotificationPreferences:
    return NotificationPreferences(
        user_id=record.user_id, **{name: getattr(record, name) for name in PREFERENCE_FLAGS}
    )


def _is_foreign_key_violation(error: sa_exc.IntegrityError) -> bool:
    # Postgres names the constraint; SQLite does not (`is_sqlite_foreign_key_error`).
    if violated_constraint(error, Base.metadata) == NOTIFICATION_PREFERENCES_USER_FK:
        return True
    return is_sqlite_foreign_key_error(error)


class SqlAlchemyNotificationPreferencesRepository(NotificationPreferencesRepository):
    """`NotificationPreferencesRepository` on the notification_preferences table (see
    the port for the contract).

    `save` is one `INSERT ... ON CONFLICT (user_id) DO UPDATE ... RETURNING` statement
    (Postgres and SQLite both have it), so two first saves racing each other cannot
    collide on the unique user id: the later one updates the row the earlier made.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._records = SqlAlchemyRepository(
            session,
            NotificationPreferencesRecord,
            constraint_errors=NOTIFICATION_CONSTRAINT_ERRORS,
        )

    async def get(self, user_id: int) -> NotificationPreferences:
        record = await self._records.find_one(user_id=user_id)
        return _to_preferences(record) if record is not None else NotificationPreferences(user_id)

    async def save(self, preferences: NotificationPreferences) -> NotificationPreferences:
        now = utcnow()
        flags: dict[str, Any] = preferences.flags()
        insert = _INSERTS[self._session.get_bind().dialect.name]
        statement = (
            insert(NotificationPreferencesRecord)
            .values(user_id=preferences.user_id, created_at=now, updated_at=now, **flags)
            .on_conflict_do_update(
                index_elements=[NotificationPreferencesRecord.user_id],
                set_={**flags, "updated_at": now},
            )
            .returning(NotificationPreferencesRecord)
            .execution_options(populate_existing=True)
        )
        with database_errors(NOTIFICATION_CONSTRAINT_ERRORS, Base.metadata):
            try:
                record = (await self._session.execute(statement)).scalar_one()
            except sa_exc.IntegrityError as error:
                if _is_foreign_key_violation(error):
                    raise UserNotFoundError() from error
                raise
        return _to_preferences(record)
