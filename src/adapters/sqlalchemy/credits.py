"""The SQL side of credits: balances and their ledger.

A balance moves by one conditional statement that the database decides, never by
reading it and writing it back; the CHECK under it (`balance >= 0`) catches anything
else. See `SqlAlchemyCreditLedger`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningInsert, ReturningUpdate

from adapters.sqlalchemy.errors import ConstraintErrors, database_errors
from adapters.sqlalchemy.records import Base, utcnow
from adapters.sqlalchemy.records_credits import (
    CREDIT_LEDGER_KEY_UNIQUE,
    CreditAccountRecord,
    LedgerEntryRecord,
)
from adapters.sqlalchemy.repository import SqlAlchemyRepository
from adapters.sqlalchemy.upsert import upsert_insert
from core.billing.errors import IdempotencyKeyTakenError
from core.billing.model import LedgerEntry, LedgerReason
from core.billing.ports import CreditLedger
from core.shared.query import Condition, ListQuery, Operator, Page, PageRequest, SortKey

CREDIT_CONSTRAINT_ERRORS: ConstraintErrors = {
    CREDIT_LEDGER_KEY_UNIQUE: IdempotencyKeyTakenError,
}

_accounts = cast(Table, CreditAccountRecord.__table__)
_ledger = cast(Table, LedgerEntryRecord.__table__)
# Ids follow the order a user's entries were applied in: the account row's lock
# serialises them, and each takes its id after the balance moved.
_NEWEST_FIRST = (SortKey("id", descending=True),)


def _to_entry(record: LedgerEntryRecord) -> LedgerEntry:
    return LedgerEntry(
        id=record.id,
        user_id=record.user_id,
        delta=record.delta,
        reason=LedgerReason(record.reason),
        source=record.source,
        note=record.note,
        reservation_id=record.reservation_id,
        idempotency_key=record.idempotency_key,
        balance_after=record.balance_after,
        created_at=record.created_at,
    )


def _add_to_balance(
    dialect: str, user_id: int, delta: int, now: datetime
) -> ReturningInsert[Any] | ReturningUpdate[Any]:
    """One statement adding `delta` to the balance unless the result would be negative,
    returning the new balance (no row: refused).

    A debit is a conditional UPDATE: no account row means a zero balance, which no
    debit fits. A credit is an upsert that opens the account (its first value is
    `delta`, never negative) or adds to it. Both lock the account row until the
    transaction ends; on Postgres a concurrent one waits for the lock, then evaluates
    its condition against the committed balance, so concurrent units cannot overdraw.
    """
    fits = _accounts.c.balance + delta >= 0
    added = _accounts.c.balance + delta
    if delta < 0:
        return (
            update(_accounts)
            .where(_accounts.c.user_id == user_id, fits)
            .values(balance=added, updated_at=now)
            .returning(_accounts.c.balance)
        )
    insert = upsert_insert(dialect, _accounts).values(
        user_id=user_id, balance=delta, created_at=now, updated_at=now
    )
    upsert = insert.on_conflict_do_update(
        index_elements=[_accounts.c.user_id],
        set_={"balance": added, "updated_at": now},
        where=fits,
    )
    return upsert.returning(_accounts.c.balance)


class SqlAlchemyCreditLedger(CreditLedger):
    """`CreditLedger` on `credit_accounts` and `credit_ledger` (contract: the port).

    `apply` runs in a SAVEPOINT: the balance statement (`_add_to_balance`), then the
    INSERT of the entry. When the insert fails (the key is taken, also by a concurrent
    unit that committed while this one waited for the account lock; or a reservation
    that does not exist) the savepoint is rolled back, so the balance is as it was and
    the unit can go on: nothing of a refused `apply` is ever committed, on SQLite (where
    a failed statement leaves the transaction open) as on Postgres. A refused balance
    is reported as `IdempotencyKeyTakenError` when the key is taken, else None.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._entries = SqlAlchemyRepository(
            session, LedgerEntryRecord, constraint_errors=CREDIT_CONSTRAINT_ERRORS
        )

    async def balance(self, user_id: int) -> int:
        statement = select(_accounts.c.balance).where(_accounts.c.user_id == user_id)
        with database_errors():
            balance = (await self._session.execute(statement)).scalar_one_or_none()
        return int(balance or 0)

    async def find(self, user_id: int, idempotency_key: str) -> LedgerEntry | None:
        record = await self._entries.find_one(user_id=user_id, idempotency_key=idempotency_key)
        return _to_entry(record) if record is not None else None

    async def apply(self, entry: LedgerEntry) -> LedgerEntry | None:
        now = utcnow()
        dialect = self._session.get_bind().dialect.name
        statement = _add_to_balance(dialect, entry.user_id, entry.delta, now)
        record: LedgerEntryRecord | None = None
        with database_errors(CREDIT_CONSTRAINT_ERRORS, Base.metadata):
            async with self._session.begin_nested():
                balance = (await self._session.execute(statement)).scalar_one_or_none()
                if balance is not None:
                    record = await self._entries.add(
                        LedgerEntryRecord(
                            user_id=entry.user_id,
                            delta=entry.delta,
                            balance_after=balance,
                            reason=entry.reason.value,
                            source=entry.source,
                            note=entry.note,
                            reservation_id=entry.reservation_id,
                            idempotency_key=entry.idempotency_key,
                            created_at=now,
                        )
                    )
        if record is None:
            if await self.find(entry.user_id, entry.idempotency_key) is not None:
                raise IdempotencyKeyTakenError()
            return None
        return replace(entry, id=record.id, balance_after=record.balance_after, created_at=now)

    async def entries(self, user_id: int, page: PageRequest) -> Page[LedgerEntry]:
        query = ListQuery(
            conditions=(Condition("user_id", Operator.EQ, user_id),), sort=_NEWEST_FIRST, page=page
        )
        found = await self._entries.list(query)
        return Page(
            items=[_to_entry(record) for record in found.items], next_cursor=found.next_cursor
        )

    async def total(self, user_id: int) -> int:
        statement = select(func.coalesce(func.sum(_ledger.c.delta), 0)).where(
            _ledger.c.user_id == user_id
        )
        with database_errors():
            return int((await self._session.execute(statement)).scalar_one())
