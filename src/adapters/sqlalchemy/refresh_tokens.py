"""The SQL side of refresh tokens: conditional UPDATEs, so a token is traded once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from adapters.sqlalchemy.records_refresh_tokens import RefreshTokenRecord
from adapters.sqlalchemy.token_tables import SqlAlchemyTokenTable
from core.identity.model import RefreshToken
from core.identity.ports import RefreshTokenRepository


def _to_token(record: RefreshTokenRecord) -> RefreshToken:
    return RefreshToken(
        id=record.id,
        token_hash=record.token_hash,
        user_id=record.user_id,
        family_id=record.family_id,
        created_at=record.created_at,
        expires_at=record.expires_at,
        used_at=record.used_at,
        revoked_at=record.revoked_at,
    )


class SqlAlchemyRefreshTokenRepository(SqlAlchemyTokenTable, RefreshTokenRepository):
    """`RefreshTokenRepository` on the `refresh_tokens` table (contract: the port).

    `use` is a single `UPDATE ... SET used_at = :now WHERE token_hash = :h AND used_at IS
    NULL AND revoked_at IS NULL AND expires_at > :now RETURNING ...`: on Postgres a
    concurrent user waits for the row lock and then finds `used_at` set; on SQLite
    writers run one at a time (`BEGIN IMMEDIATE`). Either way one wins. Revocations are
    bulk UPDATEs of the rows not revoked yet.
    """

    RECORD = RefreshTokenRecord

    async def add(self, token: RefreshToken) -> RefreshToken:
        record = RefreshTokenRecord(
            token_hash=token.token_hash,
            user_id=token.user_id,
            family_id=token.family_id,
            created_at=token.created_at,
            expires_at=token.expires_at,
            used_at=token.used_at,
            revoked_at=token.revoked_at,
        )
        await self._insert(record)
        return _to_token(record)

    async def get(self, token_hash: str) -> RefreshToken | None:
        statement = (
            select(RefreshTokenRecord)
            .where(RefreshTokenRecord.token_hash == token_hash)
            # The UPDATEs below bypass the ORM: never hand out a stale identity-map copy.
            .execution_options(populate_existing=True)
        )
        with self._errors():
            record = (await self._session.execute(statement)).scalars().first()
        return _to_token(record) if record is not None else None

    async def use(self, token_hash: str, now: datetime) -> RefreshToken | None:
        statement = (
            update(RefreshTokenRecord)
            .where(
                RefreshTokenRecord.token_hash == token_hash,
                RefreshTokenRecord.used_at.is_(None),
                RefreshTokenRecord.revoked_at.is_(None),
                RefreshTokenRecord.expires_at > now,
            )
            .values(used_at=now)
            .returning(RefreshTokenRecord.id)
            # Plain SQL: no ORM objects to keep in step with it.
            .execution_options(synchronize_session=False)
        )
        with self._errors():
            token_id = (await self._session.execute(statement)).scalar_one_or_none()
        if token_id is None:
            return None
        return await self.get(token_hash)

    async def revoke_family(self, family_id: str, now: datetime) -> int:
        return await self._stamp(
            RefreshTokenRecord.family_id == family_id,
            RefreshTokenRecord.revoked_at.is_(None),
            revoked_at=now,
        )

    async def revoke_all_for_user(
        self, user_id: int, now: datetime, *, keep_family: str | None = None
    ) -> int:
        conditions = [
            RefreshTokenRecord.user_id == user_id,
            RefreshTokenRecord.revoked_at.is_(None),
        ]
        if keep_family is not None:
            conditions.append(RefreshTokenRecord.family_id != keep_family)
        return await self._stamp(*conditions, revoked_at=now)
