"""The SQL side of identity: users."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.sqlalchemy.errors import ConstraintErrors, database_errors
from adapters.sqlalchemy.records import (
    USERS_EMAIL_UNIQUE,
    USERS_USERNAME_UNIQUE,
    UserRecord,
)
from adapters.sqlalchemy.repository import SqlAlchemyRepository
from core.identity.errors import EmailTakenError, UsernameTakenError, UserNotFoundError
from core.identity.model import Email, User, Username
from core.identity.ports import UserRepository
from core.shared.query import ListQuery, Page

USER_CONSTRAINT_ERRORS: ConstraintErrors = {
    USERS_EMAIL_UNIQUE: EmailTakenError,
    USERS_USERNAME_UNIQUE: UsernameTakenError,
}

# Never filtered or sorted on (see SqlAlchemyRepository).
PRIVATE_USER_FIELDS = ("password_hash",)

# Written by `add`/`update`; the id and timestamps belong to the store, and the token
# cut-off moves only through `end_tokens_before` (never back with a stale copy).
_STORE_OWNED = ("id", "created_at", "updated_at", "tokens_valid_after")
_WRITABLE = tuple(f.name for f in fields(User) if f.name not in _STORE_OWNED)


def _to_user(record: UserRecord) -> User:
    # A stored row always loads: it was accepted when written (see `Email.stored`).
    return User(
        id=record.id,
        email=Email.stored(record.email),
        username=Username.stored(record.username),
        password_hash=record.password_hash,
        tier_code=record.tier_code,
        is_superuser=record.is_superuser,
        email_verified=record.email_verified,
        created_at=record.created_at,
        updated_at=record.updated_at,
        deleted_at=record.deleted_at,
        deactivated_at=record.deactivated_at,
        tokens_valid_after=record.tokens_valid_after,
    )


def _values(user: User) -> dict[str, Any]:
    values = {name: getattr(user, name) for name in _WRITABLE}
    # The table keeps text; `Email` is already normalised.
    values["email"] = str(user.email)
    values["username"] = str(user.username)
    return values


class SqlAlchemyUserRepository(UserRepository):
    """`UserRepository` on the users table (see the port for the contract).

    Emails are stored and looked up in `Email`'s normalised form (only `Email`
    normalises), so the unique constraint makes them unique case-insensitively; rows
    load through `Email.stored`/`Username.stored`, never failing today's validation.
    `password_hash` cannot be used in list filters or sort keys. The unique constraints
    decide races: a duplicate raises `EmailTakenError`/`UsernameTakenError` at `add`/`update`.
    `end_tokens_before` is a conditional UPDATE (the cut-off never moves back) and
    `lock` a `SELECT ... FOR UPDATE`; `update` never writes `tokens_valid_after`.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._records = SqlAlchemyRepository(
            session,
            UserRecord,
            constraint_errors=USER_CONSTRAINT_ERRORS,
            private_fields=PRIVATE_USER_FIELDS,
        )

    async def add(self, user: User) -> User:
        record = await self._records.add(UserRecord(**_values(user)))
        return _to_user(record)

    async def get(self, user_id: int, *, include_deleted: bool = False) -> User | None:
        record = await self._records.get(user_id, include_deleted=include_deleted)
        return _to_user(record) if record is not None else None

    async def get_by_email(self, email: Email, *, include_deleted: bool = False) -> User | None:
        record = await self._records.find_one(include_deleted=include_deleted, email=str(email))
        return _to_user(record) if record is not None else None

    async def get_by_username(
        self, username: Username, *, include_deleted: bool = False
    ) -> User | None:
        record = await self._records.find_one(
            include_deleted=include_deleted, username=str(username)
        )
        return _to_user(record) if record is not None else None

    async def update(self, user: User) -> User:
        if user.id is None:
            raise UserNotFoundError()
        record = await self._records.update(user.id, _values(user), include_deleted=True)
        if record is None:
            raise UserNotFoundError()
        return _to_user(record)

    async def soft_delete(self, user_id: int, at: datetime) -> bool:
        return await self._records.soft_delete(user_id, at)

    async def list(self, query: ListQuery) -> Page[User]:
        page = await self._records.list(query)
        return Page(
            items=[_to_user(record) for record in page.items],
            next_cursor=page.next_cursor,
            total=page.total,
        )

    async def end_tokens_before(self, user_id: int, at: datetime) -> bool:
        # One conditional UPDATE: the cut-off only moves forward, whoever comes last.
        column = UserRecord.tokens_valid_after
        statement = (
            update(UserRecord)
            .where(UserRecord.id == user_id, or_(column.is_(None), column < at))
            .values(tokens_valid_after=at)
            .execution_options(synchronize_session=False)
        )
        with database_errors():
            result = await self._session.execute(statement)
        assert isinstance(result, CursorResult)
        if result.rowcount:
            return True
        return await self._records.get(user_id, include_deleted=True) is not None

    async def lock(self, user_id: int) -> User | None:
        # SELECT ... FOR UPDATE on Postgres; SQLite drops the clause, but its writers
        # run one at a time anyway (BEGIN IMMEDIATE).
        statement = (
            select(UserRecord)
            .where(UserRecord.id == user_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        with database_errors():
            record = (await self._session.execute(statement)).scalars().first()
        if record is None or record.deleted_at is not None:
            return None
        return _to_user(record)
