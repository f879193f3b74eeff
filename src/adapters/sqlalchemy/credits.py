"""The SQL side of credits: balances and their ledger.

A balance moves by one conditional statement that the database decides, never by
reading it and writing it back; the CHECK under it (`balance >= 0`) catches anything
else. See `SqlAlchemyCreditLedger`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningInsert, ReturningUpdate

from adapters.sqlalchemy.errors import ConstraintErrors, database_errors
from adapters.sqlalchemy.prepared import PerDialect
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


def _balance_statement(dialect: str, credit: bool) -> ReturningInsert[Any] | ReturningUpdate[Any]:
    """One statement adding `b_delta` to `b_user_id`'s balance unless the result would be
    negative, returning the new balance (no row: refused).

    A debit is a conditional UPDATE: no account row means a zero balance, which no
    debit fits. A credit is an upsert that opens the account (its first value is
    `delta`, never negative) or adds to it. Both lock the account row until the
    transaction ends; on Postgres a concurrent one waits for the lock, then evaluates
    its condition against the committed balance, so concurrent units cannot overdraw.
    """
    delta = bindparam("b_delta", type_=_accounts.c.balance.type)
    now = bindparam("b_now", type_=_accounts.c.updated_at.type)
    fits = _accounts.c.balance + delta >= 0
    added = _accounts.c.balance + delta
    if not credit:
        return (
            update(_accounts)
            .where(_accounts.c.user_id == bindparam("b_user_id"), fits)
            .values(balance=added, updated_at=now)
            .returning(_accounts.c.balance)
        )
    insert = upsert_insert(dialect, _accounts).values(
        user_id=bindparam("b_user_id"), balance=delta, created_at=now, updated_at=now
    )
    upsert = insert.on_conflict_do_update(
        index_elements=[_accounts.c.user_id],
        set_={"balance": added, "updated_at": now},
        where=fits,
    )
    return upsert.returning(_accounts.c.balance)


# Built once per dialect (`prepared`): a send applies two entries.
_DEBIT = PerDialect(lambda dialect: _balance_statement(dialect, credit=False))
_CREDIT = PerDialect(lambda dialect: _balance_statement(dialect, credit=True))
_INSERT_ENTRY = PerDialect(
    lambda dialect: (
        upsert_insert(dialect, _ledger)
        .on_conflict_do_nothing(index_elements=[_ledger.c.user_id, _ledger.c.idempotency_key])
        .returning(_ledger.c.id)
    )
)
_UNDO = (
    update(_accounts)
    .where(_accounts.c.user_id == bindparam("b_user_id"))
    .values(
        balance=_accounts.c.balance - bindparam("b_delta", type_=_accounts.c.balance.type),
        updated_at=bindparam("b_now", type_=_accounts.c.updated_at.type),
    )
)


class SqlAlchemyCreditLedger(CreditLedger):
    """`CreditLedger` on `credit_accounts` and `credit_ledger` (contract: the port).

    `apply` is two statements and no savepoint (a send applies two entries): the
    balance statement (`_balance_statement`), then `INSERT ... ON CONFLICT DO NOTHING` of
    the entry. When the key is taken (also by a concurrent unit that committed while
    this one waited for the account lock) nothing is inserted, the balance is put back
    under the same lock and `IdempotencyKeyTakenError` raised: the unit can go on. A
    reservation or user that does not exist fails the insert: on Postgres that aborts
    the unit, and on SQLite (where a failed statement leaves the transaction open) the
    balance is put back first, so nothing of a refused `apply` is ever committed. A
    refused balance is reported as `IdempotencyKeyTakenError` when the key is taken,
    else None.
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
        moved = (_CREDIT if entry.delta >= 0 else _DEBIT)(dialect)
        move = {"b_user_id": entry.user_id, "b_delta": entry.delta, "b_now": now}
        with database_errors(CREDIT_CONSTRAINT_ERRORS, Base.metadata):
            balance = (await self._session.execute(moved, move)).scalar_one_or_none()
            if balance is None:
                if await self.find(entry.user_id, entry.idempotency_key) is not None:
                    raise IdempotencyKeyTakenError()
                return None
            stored = {
                "user_id": entry.user_id,
                "delta": entry.delta,
                "balance_after": balance,
                "reason": entry.reason.value,
                "source": entry.source,
                "note": entry.note,
                "reservation_id": entry.reservation_id,
                "idempotency_key": entry.idempotency_key,
                "created_at": now,
            }
            try:
                result = await self._session.execute(_INSERT_ENTRY(dialect), stored)
                entry_id = result.scalar_one_or_none()
            except sa_exc.IntegrityError:
                # Postgres aborts the unit (nothing of it can commit); SQLite keeps it
                # open, so the balance is put back before the error goes up.
                if dialect == "sqlite":
                    await self._session.execute(_UNDO, move)
                raise
            if entry_id is None:  # the key is taken: put the balance back
                await self._session.execute(_UNDO, move)
                raise IdempotencyKeyTakenError()
        return replace(entry, id=entry_id, balance_after=balance, created_at=now)

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
