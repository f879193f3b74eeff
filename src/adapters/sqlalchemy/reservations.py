"""The SQL side of credit reservations: rows that leave `held` once, by one conditional
UPDATE."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.sqlalchemy.errors import ConstraintErrors, database_errors
from adapters.sqlalchemy.prepared import PerDialect
from adapters.sqlalchemy.records import Base, utcnow
from adapters.sqlalchemy.records_credits import (
    CREDIT_RESERVATIONS_KEY_UNIQUE,
    ReservationRecord,
)
from adapters.sqlalchemy.repository import SqlAlchemyRepository
from adapters.sqlalchemy.upsert import upsert_insert
from core.billing.errors import IdempotencyKeyTakenError
from core.billing.model import Reservation, ReservationStatus
from core.billing.ports import ReservationRepository

RESERVATION_CONSTRAINT_ERRORS: ConstraintErrors = {
    CREDIT_RESERVATIONS_KEY_UNIQUE: IdempotencyKeyTakenError,
}

_reservations = cast(Table, ReservationRecord.__table__)
_HELD = ReservationStatus.HELD.value
_CLOSED = (ReservationStatus.SETTLED, ReservationStatus.RELEASED)

# Built once (`prepared`): a send adds one reservation and closes it.
_ADD = PerDialect(
    lambda dialect: (
        upsert_insert(dialect, _reservations)
        .on_conflict_do_nothing(
            index_elements=[_reservations.c.user_id, _reservations.c.idempotency_key]
        )
        .returning(*_reservations.c)
    )
)
# The SET clause is the columns of the parameters.
_UPDATE_HELD = (
    update(_reservations)
    .where(_reservations.c.id == bindparam("b_id"), _reservations.c.status == _HELD)
    .returning(*_reservations.c)
)


def _to_reservation(record: ReservationRecord | Row[Any]) -> Reservation:
    return Reservation(
        id=record.id,
        user_id=record.user_id,
        amount=record.amount,
        idempotency_key=record.idempotency_key,
        expires_at=record.expires_at,
        status=ReservationStatus(record.status),
        usage=record.usage,
        settled_amount=record.settled_amount,
        created_at=record.created_at,
        closed_at=record.closed_at,
    )


class SqlAlchemyReservationRepository(ReservationRepository):
    """`ReservationRepository` on `credit_reservations` (contract: the port).

    `record_usage` and `close` are one `UPDATE ... WHERE id = :id AND status = 'held'`
    each: the row lock makes a concurrent closer wait, and the condition, evaluated
    again on the committed row, lets exactly one of them through. `add` is one
    `INSERT ... ON CONFLICT DO NOTHING RETURNING`: a taken key (also by a concurrent
    unit, which it waits for) inserts nothing and raises `IdempotencyKeyTakenError`,
    the unit still usable; a missing user raises `ConflictError`, and the unit is to
    be rolled back.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._records = SqlAlchemyRepository(
            session, ReservationRecord, constraint_errors=RESERVATION_CONSTRAINT_ERRORS
        )

    async def add(self, reservation: Reservation) -> Reservation:
        parameters = {
            "user_id": reservation.user_id,
            "amount": reservation.amount,
            "status": _HELD,
            "usage": reservation.usage,
            "expires_at": reservation.expires_at,
            "idempotency_key": reservation.idempotency_key,
            "created_at": utcnow(),
        }
        statement = _ADD(self._session.get_bind().dialect.name)
        with database_errors(RESERVATION_CONSTRAINT_ERRORS, Base.metadata):
            row = (await self._session.execute(statement, parameters)).first()
        if row is None:
            raise IdempotencyKeyTakenError()
        return _to_reservation(row)

    async def get(self, reservation_id: int) -> Reservation | None:
        record = await self._records.get(reservation_id)
        return _to_reservation(record) if record is not None else None

    async def find(self, user_id: int, idempotency_key: str) -> Reservation | None:
        record = await self._records.find_one(user_id=user_id, idempotency_key=idempotency_key)
        return _to_reservation(record) if record is not None else None

    async def _update_held(self, reservation_id: int, **values: Any) -> Row[Any] | None:
        with database_errors():
            result = await self._session.execute(_UPDATE_HELD, {"b_id": reservation_id, **values})
        return result.first()

    async def record_usage(self, reservation_id: int, usage: int) -> bool:
        return await self._update_held(reservation_id, usage=usage) is not None

    async def close(
        self,
        reservation_id: int,
        status: ReservationStatus,
        settled_amount: int,
        at: datetime,
    ) -> Reservation | None:
        if ReservationStatus(status) not in _CLOSED:
            raise ValueError(f"a reservation closes as settled or released, not {status!r}")
        row = await self._update_held(
            reservation_id,
            status=ReservationStatus(status).value,
            settled_amount=settled_amount,
            closed_at=at,
        )
        return _to_reservation(row) if row is not None else None

    async def expired(self, now: datetime, limit: int) -> list[Reservation]:
        if limit < 1:
            return []
        statement = (
            select(ReservationRecord)
            .where(ReservationRecord.status == _HELD, ReservationRecord.expires_at <= now)
            .order_by(ReservationRecord.expires_at, ReservationRecord.id)
            .limit(limit)
            .execution_options(populate_existing=True)
        )
        with database_errors():
            records = (await self._session.execute(statement)).scalars().all()
        return [_to_reservation(record) for record in records]
