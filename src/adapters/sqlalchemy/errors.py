"""Translating driver errors into core errors at the adapter boundary.

Constraint violations become `ConflictError` (or a leaf chosen by constraint name);
anything that means "the database cannot answer right now" becomes
`UnavailableError(dependency="database")`. Programming errors pass through untouched.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from sqlalchemy import MetaData, PrimaryKeyConstraint, UniqueConstraint
from sqlalchemy import exc as sa_exc

from core.shared.errors import ConflictError, DomainError, UnavailableError

ConstraintErrors = Mapping[str, Callable[[], DomainError]]

# SQLSTATE classes: 08 connection, 28 authorization, 53 resources, 57 operator
# intervention (incl. statement timeout), 58 system; plus serialization failure and
# deadlock, which a retry resolves.
_UNAVAILABLE_SQLSTATE_CLASSES = frozenset({"08", "28", "53", "57", "58"})
_UNAVAILABLE_SQLSTATES = frozenset({"40001", "40P01"})

_PG_CONSTRAINT = re.compile(r'constraint "([^"]+)"')
_SQLITE_UNIQUE_INDEX = re.compile(r"UNIQUE constraint failed: index '([^']+)'")
_SQLITE_UNIQUE_COLUMNS = re.compile(r"UNIQUE constraint failed: ([\w.]+(?:, [\w.]+)*)")
_SQLITE_CHECK = re.compile(r"CHECK constraint failed: (\w+)")


def _chain(error: BaseException | None, *, implicit: bool = True) -> Iterator[BaseException]:
    """The error and its causes (and, if `implicit`, the errors it was raised during)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or (error.__context__ if implicit else None)


def _unique_on_columns(metadata: MetaData, spec: str) -> str | None:
    """SQLite names the columns (`users.email`), not the constraint: find it by columns."""
    pairs = [item.strip().split(".", 1) for item in spec.split(",")]
    if any(len(pair) != 2 for pair in pairs):
        return None
    table = metadata.tables.get(pairs[0][0])
    if table is None:
        return None
    columns = {column for _, column in pairs}
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint | PrimaryKeyConstraint) and (
            set(constraint.columns.keys()) == columns
        ):
            return str(constraint.name) if constraint.name else None
    for index in table.indexes:
        if index.unique and {column.name for column in index.columns} == columns:
            return str(index.name) if index.name else None
    return None


def violated_constraint(error: sa_exc.IntegrityError, metadata: MetaData | None) -> str | None:
    """The name of the constraint an IntegrityError reports, on Postgres and SQLite."""
    for cause in _chain(error.orig):
        name = getattr(cause, "constraint_name", None)
        if isinstance(name, str) and name:
            return name
    message = str(error.orig)
    for pattern in (_PG_CONSTRAINT, _SQLITE_UNIQUE_INDEX, _SQLITE_CHECK):
        match = pattern.search(message)
        if match:
            return match.group(1)
    match = _SQLITE_UNIQUE_COLUMNS.search(message)
    if match and metadata is not None:
        return _unique_on_columns(metadata, match.group(1))
    return None


def is_unavailable(error: BaseException) -> bool:
    """True when the error means the database is down, unreachable, overloaded or slow."""
    if isinstance(error, sa_exc.TimeoutError | sa_exc.DisconnectionError | TimeoutError | OSError):
        return True
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        # asyncpg reports a value it cannot encode as an InterfaceError (its DataError
        # is also a ValueError): a bug or bad input, not an outage.
        if any(
            isinstance(cause, ValueError | TypeError)
            for cause in _chain(error.orig, implicit=False)
        ):
            return False
        if isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError):
            return True
        sqlstate = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
        if isinstance(sqlstate, str) and (
            sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES or sqlstate in _UNAVAILABLE_SQLSTATES
        ):
            return True
    return False


def conflict_error(
    error: sa_exc.IntegrityError,
    constraint_errors: ConstraintErrors | None = None,
    metadata: MetaData | None = None,
) -> DomainError:
    name = violated_constraint(error, metadata)
    if name is not None and constraint_errors and name in constraint_errors:
        return constraint_errors[name]()
    return ConflictError()


@contextmanager
def database_errors(
    constraint_errors: ConstraintErrors | None = None, metadata: MetaData | None = None
) -> Iterator[None]:
    """Wrap database calls: re-raise driver errors as core errors (the cause is chained)."""
    try:
        yield
    except sa_exc.IntegrityError as error:
        raise conflict_error(error, constraint_errors, metadata) from error
    except Exception as error:
        if is_unavailable(error):
            raise UnavailableError("The database is unavailable.", dependency="database") from error
        raise
