"""Usage counters of limits in process memory, transactional like the SQL table."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from adapters.memory.row_locks import RowLocks
from adapters.memory.transaction import PendingWrites
from core.billing.model import check_usage_amount
from core.billing.ports import UsageCounters
from core.shared.errors import ConflictError

UserExists = Callable[[int], Awaitable[bool]]
CounterKey = tuple[int, str, datetime]


@dataclass
class InMemoryUsageState:
    """The committed counters every unit of work of one database shares."""

    counters: dict[CounterKey, int] = field(default_factory=dict)
    # A counter written by `consume`, locked until the unit of work ends.
    rows: RowLocks[CounterKey] = field(default_factory=RowLocks)


def _key(user_id: int, name: str, period_start: datetime) -> CounterKey:
    # As the SQL column: an aware instant, stored in UTC; a naive one has no zone.
    if period_start.tzinfo is None or period_start.utcoffset() is None:
        raise ValueError("a period start is an aware datetime")
    return user_id, name, period_start.astimezone(UTC)


class InMemoryUsageCounters(UsageCounters, PendingWrites):
    """`UsageCounters` over an `InMemoryUsageState` (contract: the port).

    `consume` locks the counter until the unit of work ends, as the SQL upsert locks
    its row, so a second unit counting on it waits and then adds to the first one's
    committed total: of concurrent units, only those that fit within the limit count.
    `user_exists` stands in for the foreign key.
    """

    def __init__(self, state: InMemoryUsageState, user_exists: UserExists) -> None:
        self._state = state
        self._user_exists = user_exists
        self._locks = state.rows.holder()
        self._pending: dict[CounterKey, int] = {}

    async def used(self, user_id: int, name: str, period_start: datetime) -> int:
        key = _key(user_id, name, period_start)
        if key in self._pending:
            return self._pending[key]
        return self._state.counters.get(key, 0)

    async def used_in(self, user_id: int, periods: Mapping[str, datetime]) -> dict[str, int]:
        return {name: await self.used(user_id, name, start) for name, start in periods.items()}

    async def consume(
        self, user_id: int, name: str, period_start: datetime, amount: int, limit: int
    ) -> int | None:
        check_usage_amount(amount)
        if amount > limit:
            return None
        key = _key(user_id, name, period_start)
        await self._locks.hold(key)
        total = await self.used(user_id, name, period_start) + amount
        if total > limit:
            return None
        if not await self._user_exists(user_id):
            raise ConflictError("The user of this counter does not exist.")
        self._pending[key] = total
        return total

    def _commit(self) -> None:
        self._state.counters.update(self._pending)
        self._forget()

    def _rollback(self) -> None:
        self._forget()

    def _forget(self) -> None:
        self._pending.clear()
        self._locks.release_all()
