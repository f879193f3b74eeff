"""One INSERT/UPDATE ... RETURNING, with the core errors its constraints map to.

Shared by the repositories that write single statements (conversations, messages,
prices, payments, checkouts, subscriptions, webhook events).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from sqlalchemy import Row
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from adapters.sqlalchemy.errors import ConstraintErrors, database_errors
from adapters.sqlalchemy.records import Base
from core.identity.errors import UserNotFoundError
from core.shared.errors import DomainError

# SQLite names no constraint when a foreign key fails.
_SQLITE_FOREIGN_KEY = "FOREIGN KEY constraint failed"


def is_sqlite_foreign_key_error(error: sa_exc.IntegrityError) -> bool:
    return _SQLITE_FOREIGN_KEY in str(error.orig)


async def user_not_found() -> DomainError:
    """`missing_reference` of a table whose one foreign key is the user."""
    return UserNotFoundError()


async def returning(
    session: AsyncSession,
    statement: Executable,
    constraint_errors: ConstraintErrors,
    *,
    parameters: Mapping[str, Any] | None = None,
    savepoint: bool = False,
    missing_reference: Callable[[], Awaitable[DomainError]] | None = None,
) -> Row[Any] | None:
    """Run one INSERT/UPDATE ... RETURNING (with `parameters`, for a statement built
    once); its row, or None when it touched none.

    Constraint violations raise the core errors `constraint_errors` maps them to; a
    foreign key SQLite reports without its name raises what `missing_reference()`
    finds (after the savepoint is undone). With `savepoint`, a refused statement is
    undone alone and the unit stays usable.
    """
    with database_errors(constraint_errors, Base.metadata):
        try:
            if savepoint:
                async with session.begin_nested():
                    return (await session.execute(statement, parameters)).first()
            return (await session.execute(statement, parameters)).first()
        except sa_exc.IntegrityError as error:
            if missing_reference is not None and is_sqlite_foreign_key_error(error):
                raise await missing_reference() from error
            raise


async def write(
    session: AsyncSession,
    statement: Executable,
    constraint_errors: ConstraintErrors,
    *,
    savepoint: bool = False,
) -> Row[Any] | None:
    """`returning` for a table whose one foreign key is the user (Postgres names it in
    `constraint_errors`; SQLite's unnamed failure is `UserNotFoundError`)."""
    return await returning(
        session,
        statement,
        constraint_errors,
        savepoint=savepoint,
        missing_reference=user_not_found,
    )
