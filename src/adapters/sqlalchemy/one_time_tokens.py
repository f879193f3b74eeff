"""The SQL side of one-time tokens: conditional UPDATEs, so a token is used once."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.sqlalchemy.errors import database_errors
from adapters.sqlalchemy.records import Base
from adapters.sqlalchemy.records_identity_tokens import OneTimeTokenRecord
from core.identity.model import OneTimeToken, TokenPurpose
from core.identity.ports import OneTimeTokenRepository


def _to_token(record: OneTimeTokenRecord) -> OneTimeToken:
    return OneTimeToken(
        id=record.id,
        token_hash=record.token_hash,
        user_id=record.user_id,
        purpose=TokenPurpose(record.purpose),
        created_at=record.created_at,
        expires_at=record.expires_at,
        used_at=record.used_at,
    )


class SqlAlchemyOneTimeTokenRepository(OneTimeTokenRepository):
    """`OneTimeTokenRepository` on the `one_time_tokens` table (contract: the port).

    `consume` is a single `UPDATE ... SET used_at = :now WHERE token_hash = :h AND
    purpose = :p AND used_at IS NULL AND expires_at > :now RETURNING user_id`: on
    Postgres a concurrent consumer waits for the row lock and then finds `used_at` set;
    on SQLite writers run one at a time (`BEGIN IMMEDIATE`). Either way one wins.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def _errors(self) -> AbstractContextManager[None]:
        return database_errors(None, Base.metadata)

    async def _count(self, statement: Any) -> int:
        with self._errors():
            result = await self._session.execute(statement)
        assert isinstance(result, CursorResult)
        return int(result.rowcount)

    async def add(self, token: OneTimeToken) -> OneTimeToken:
        record = OneTimeTokenRecord(
            token_hash=token.token_hash,
            user_id=token.user_id,
            purpose=token.purpose.value,
            created_at=token.created_at,
            expires_at=token.expires_at,
            used_at=token.used_at,
        )
        self._session.add(record)
        with self._errors():
            await self._session.flush()
        return _to_token(record)

    async def find_usable(
        self, token_hash: str, purpose: TokenPurpose, now: datetime
    ) -> OneTimeToken | None:
        statement = (
            select(OneTimeTokenRecord)
            .where(
                OneTimeTokenRecord.token_hash == token_hash,
                OneTimeTokenRecord.purpose == purpose.value,
                OneTimeTokenRecord.used_at.is_(None),
                OneTimeTokenRecord.expires_at > now,
            )
            # The UPDATEs below bypass the ORM: never hand out a stale identity-map copy.
            .execution_options(populate_existing=True)
        )
        with self._errors():
            record = (await self._session.execute(statement)).scalars().first()
        return _to_token(record) if record is not None else None

    async def consume(self, token_hash: str, purpose: TokenPurpose, now: datetime) -> int | None:
        statement = (
            update(OneTimeTokenRecord)
            .where(
                OneTimeTokenRecord.token_hash == token_hash,
                OneTimeTokenRecord.purpose == purpose.value,
                OneTimeTokenRecord.used_at.is_(None),
                OneTimeTokenRecord.expires_at > now,
            )
            .values(used_at=now)
            .returning(OneTimeTokenRecord.user_id)
            # Plain SQL: no ORM objects to keep in step with it.
            .execution_options(synchronize_session=False)
        )
        with self._errors():
            user_id = (await self._session.execute(statement)).scalar_one_or_none()
        return int(user_id) if user_id is not None else None

    async def invalidate_for_user(self, user_id: int, purpose: TokenPurpose, now: datetime) -> int:
        statement = (
            update(OneTimeTokenRecord)
            .where(
                OneTimeTokenRecord.user_id == user_id,
                OneTimeTokenRecord.purpose == purpose.value,
                OneTimeTokenRecord.used_at.is_(None),
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        return await self._count(statement)

    async def purge_expired(self, now: datetime) -> int:
        statement = (
            delete(OneTimeTokenRecord)
            .where(OneTimeTokenRecord.expires_at <= now)
            .execution_options(synchronize_session=False)
        )
        return await self._count(statement)
