"""The SQL side of one-time tokens: conditional UPDATEs, so a token is used once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from adapters.sqlalchemy.records_identity_tokens import OneTimeTokenRecord
from adapters.sqlalchemy.token_tables import SqlAlchemyTokenTable
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


class SqlAlchemyOneTimeTokenRepository(SqlAlchemyTokenTable, OneTimeTokenRepository):
    """`OneTimeTokenRepository` on the `one_time_tokens` table (contract: the port).

    `consume` is a single `UPDATE ... SET used_at = :now WHERE token_hash = :h AND
    purpose = :p AND used_at IS NULL AND expires_at > :now RETURNING user_id`: on
    Postgres a concurrent consumer waits for the row lock and then finds `used_at` set;
    on SQLite writers run one at a time (`BEGIN IMMEDIATE`). Either way one wins.
    """

    RECORD = OneTimeTokenRecord

    async def add(self, token: OneTimeToken) -> OneTimeToken:
        record = OneTimeTokenRecord(
            token_hash=token.token_hash,
            user_id=token.user_id,
            purpose=token.purpose.value,
            created_at=token.created_at,
            expires_at=token.expires_at,
            used_at=token.used_at,
        )
        await self._insert(record)
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
        return await self._stamp(
            OneTimeTokenRecord.user_id == user_id,
            OneTimeTokenRecord.purpose == purpose.value,
            OneTimeTokenRecord.used_at.is_(None),
            used_at=now,
        )
