"""Credit reservations in process memory, transactional like the SQL table."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from adapters.memory.row_locks import RowLocks
from adapters.memory.transaction import PendingWrites
from core.billing.errors import IdempotencyKeyTakenError
from core.billing.model import Reservation, ReservationStatus
from core.billing.ports import ReservationRepository
from core.shared.errors import ConflictError

UserExists = Callable[[int], Awaitable[bool]]
_CLOSED = (ReservationStatus.SETTLED, ReservationStatus.RELEASED)


@dataclass
class InMemoryReservationState:
    """The committed reservations every unit of work of one database shares."""

    reservations: dict[int, Reservation] = field(default_factory=dict)
    keys: dict[tuple[int, str], int] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    # A reservation written by `record_usage` or `close`, locked until the unit ends.
    rows: RowLocks[int] = field(default_factory=RowLocks)


def _key(reservation: Reservation) -> tuple[int, str]:
    return reservation.user_id, reservation.idempotency_key


class InMemoryReservationRepository(ReservationRepository, PendingWrites):
    """`ReservationRepository` over an `InMemoryReservationState` (contract: the port).

    `record_usage` and `close` lock the reservation until the unit of work ends, as the
    SQL adapter's conditional UPDATE locks the row: a second closer waits, then finds it
    closed and gets None, so exactly one closer wins however units interleave. The
    per-user key is checked at `add` and again at commit. `user_exists` stands in for
    the foreign key.
    """

    def __init__(self, state: InMemoryReservationState, user_exists: UserExists) -> None:
        self._state = state
        self._user_exists = user_exists
        self._locks = state.rows.holder()
        self._pending: dict[int, Reservation] = {}

    def _visible(self) -> dict[int, Reservation]:
        return {**self._state.reservations, **self._pending}

    async def add(self, reservation: Reservation) -> Reservation:
        if await self.find(*_key(reservation)) is not None:
            raise IdempotencyKeyTakenError()
        if not await self._user_exists(reservation.user_id):
            raise ConflictError("The user of this reservation does not exist.")
        stored = replace(
            reservation,
            id=next(self._state.ids),
            status=ReservationStatus.HELD,
            created_at=datetime.now(UTC),
            closed_at=None,
            settled_amount=None,
        )
        assert stored.id is not None
        self._pending[stored.id] = stored
        return stored

    async def get(self, reservation_id: int) -> Reservation | None:
        return self._visible().get(reservation_id)

    async def find(self, user_id: int, idempotency_key: str) -> Reservation | None:
        committed = self._state.keys.get((user_id, idempotency_key))
        if committed is not None:
            return self._visible()[committed]
        return next(
            (r for r in self._pending.values() if _key(r) == (user_id, idempotency_key)), None
        )

    async def _held(self, reservation_id: int) -> Reservation | None:
        """Lock the reservation, then return it if it is still held."""
        if reservation_id not in self._visible():
            return None
        await self._locks.hold(reservation_id)
        current = self._visible()[reservation_id]
        return current if current.status is ReservationStatus.HELD else None

    async def record_usage(self, reservation_id: int, usage: int) -> bool:
        current = await self._held(reservation_id)
        if current is None:
            return False
        self._pending[reservation_id] = replace(current, usage=usage)
        return True

    async def close(
        self,
        reservation_id: int,
        status: ReservationStatus,
        settled_amount: int,
        at: datetime,
    ) -> Reservation | None:
        if ReservationStatus(status) not in _CLOSED:
            raise ValueError(f"a reservation closes as settled or released, not {status!r}")
        current = await self._held(reservation_id)
        if current is None:
            return None
        closed = replace(current, status=status, settled_amount=settled_amount, closed_at=at)
        self._pending[reservation_id] = closed
        return closed

    async def expired(self, now: datetime, limit: int) -> list[Reservation]:
        due = [
            r
            for r in self._visible().values()
            if r.status is ReservationStatus.HELD and r.expires_at <= now
        ]
        due.sort(key=lambda r: (r.expires_at, r.id or 0))
        return due[:limit]

    def _check(self) -> None:
        """Raise `IdempotencyKeyTakenError` if a pending reservation's key was committed
        meanwhile by another unit (the unique constraint)."""
        for reservation_id, reservation in self._pending.items():
            owner = self._state.keys.get(_key(reservation))
            if owner is not None and owner != reservation_id:
                raise IdempotencyKeyTakenError()

    def _commit(self) -> None:
        for reservation_id, reservation in self._pending.items():
            self._state.reservations[reservation_id] = reservation
            self._state.keys[_key(reservation)] = reservation_id
        self._forget()

    def _rollback(self) -> None:
        self._forget()

    def _forget(self) -> None:
        self._pending.clear()
        self._locks.release_all()
