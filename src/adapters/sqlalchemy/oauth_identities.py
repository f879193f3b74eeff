"""The SQL side of OAuth links: one row per linked provider account."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.sqlalchemy.errors import ConstraintErrors, database_errors
from adapters.sqlalchemy.records_oauth import (
    OAUTH_IDENTITIES_PROVIDER_SUBJECT_UNIQUE,
    OAuthIdentityRecord,
)
from adapters.sqlalchemy.repository import SqlAlchemyRepository
from core.identity.oauth_errors import OAuthIdentityTakenError
from core.identity.oauth_model import OAuthIdentity
from core.identity.oauth_ports import OAuthIdentityRepository

OAUTH_CONSTRAINT_ERRORS: ConstraintErrors = {
    OAUTH_IDENTITIES_PROVIDER_SUBJECT_UNIQUE: OAuthIdentityTakenError,
}


def _to_identity(record: OAuthIdentityRecord) -> OAuthIdentity:
    return OAuthIdentity(
        id=record.id,
        user_id=record.user_id,
        provider=record.provider,
        subject=record.subject,
        email=record.email,
        created_at=record.created_at,
    )


class SqlAlchemyOAuthIdentityRepository(OAuthIdentityRepository):
    """`OAuthIdentityRepository` on the `oauth_identities` table (contract: the port).

    The unique constraint on (provider, subject) decides races: the loser's INSERT (at
    `add`, which flushes) raises `OAuthIdentityTakenError`; on Postgres it waits for the
    winner's transaction first. A missing user trips the foreign key (`ConflictError`).
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._records = SqlAlchemyRepository(
            session, OAuthIdentityRecord, constraint_errors=OAUTH_CONSTRAINT_ERRORS
        )

    async def add(self, identity: OAuthIdentity) -> OAuthIdentity:
        record = OAuthIdentityRecord(
            user_id=identity.user_id,
            provider=identity.provider,
            subject=identity.subject,
            email=identity.email,
            created_at=identity.created_at,
        )
        return _to_identity(await self._records.add(record))

    async def get(self, provider: str, subject: str) -> OAuthIdentity | None:
        record = await self._records.find_one(provider=provider, subject=subject)
        return _to_identity(record) if record is not None else None

    async def list_for_user(self, user_id: int) -> list[OAuthIdentity]:
        statement = (
            select(OAuthIdentityRecord)
            .where(OAuthIdentityRecord.user_id == user_id)
            .order_by(OAuthIdentityRecord.created_at, OAuthIdentityRecord.id)
        )
        with database_errors():
            records = (await self._session.execute(statement)).scalars().all()
        return [_to_identity(record) for record in records]
