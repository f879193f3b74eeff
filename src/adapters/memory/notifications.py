"""Notification preferences in process memory, transactional with the in-memory unit of
work (`adapters.memory.unit_of_work`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from adapters.memory.transaction import PendingWrites
from core.identity.errors import UserNotFoundError
from core.notifications.model import NotificationPreferences
from core.notifications.ports import NotificationPreferencesRepository

UserExists = Callable[[int], Awaitable[bool]]


@dataclass
class InMemoryNotificationState:
    """The committed preferences every unit of work of one factory shares."""

    preferences: dict[int, NotificationPreferences] = field(default_factory=dict)


class InMemoryNotificationPreferencesRepository(NotificationPreferencesRepository, PendingWrites):
    """`NotificationPreferencesRepository` over an `InMemoryNotificationState` (see the
    port for the contract).

    Saves are kept apart until the unit of work commits (`_commit`, called under the
    state's lock) and dropped by `_rollback`. `user_exists` asks the same unit of work's
    users, so a save for an unknown user fails as the SQL foreign key makes it fail.
    Preferences are frozen dataclasses, so handing them out needs no copies.
    """

    def __init__(self, state: InMemoryNotificationState, user_exists: UserExists) -> None:
        self._state = state
        self._user_exists = user_exists
        self._pending: dict[int, NotificationPreferences] = {}

    async def get(self, user_id: int) -> NotificationPreferences:
        if user_id in self._pending:
            return self._pending[user_id]
        return self._state.preferences.get(user_id) or NotificationPreferences(user_id)

    async def save(self, preferences: NotificationPreferences) -> NotificationPreferences:
        if not await self._user_exists(preferences.user_id):
            raise UserNotFoundError()
        self._pending[preferences.user_id] = preferences
        return preferences

    def _commit(self) -> None:
        """Apply the pending saves; the caller holds the state's lock. Cannot fail."""
        self._state.preferences.update(self._pending)
        self._pending.clear()

    def _rollback(self) -> None:
        self._pending.clear()
