"""The generic repository base every SQL repository is built on.

It speaks the core query vocabulary (`core.shared.query`) over one record type: get,
exists, count, filtered/sorted lists with offset or cursor pagination, soft-delete
filtering, add, update, bulk insert/update, soft delete, and explicitly declared joins.
"""

from __future__ import annotations

import builtins
import functools
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, and_, func, insert, inspect, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.orm.util import AliasedClass
from sqlalchemy.sql.elements import ColumnElement

from adapters.sqlalchemy.errors import ConstraintErrors, database_errors
from adapters.sqlalchemy.query import (
    Field,
    FieldSet,
    OrderKey,
    coerce_value,
    keyset_after,
    make_cursor,
    order_by,
    order_keys,
    read_cursor,
    record_fields,
    where_clauses,
)
from adapters.sqlalchemy.records import utcnow
from core.shared.errors import NotFoundError
from core.shared.query import (
    Condition,
    InvalidQueryError,
    ListQuery,
    Operator,
    Page,
    parse_filters,
)

RecordT = TypeVar("RecordT", bound=DeclarativeBase)

_SOFT_DELETE = "deleted_at"
_UPDATED_AT = "updated_at"
# Set together on insert, so a new row's two timestamps are equal.
_TIMESTAMPS = ("created_at", _UPDATED_AT)


@dataclass(frozen=True, slots=True)
class JoinSpec:
    """An explicit join for `list_joined`.

    `target` (a record class, or an `aliased()` one for self-joins) is joined `ON on`
    (inner, or left outer with `outer=True`). Its columns appear in each row, and can be
    filtered and sorted on, as `prefix + column`: prefix `"maker__"` gives `maker__name`
    (a lone `_` would clash with the usual `maker_id`; a clash is a `ValueError`).
    Soft-deleted target rows are left out of the join unless the query includes deleted
    rows.
    """

    target: type[DeclarativeBase] | AliasedClass[Any]
    on: ColumnElement[bool]
    prefix: str
    outer: bool = False


@functools.cache
def _describe(
    record_type: type[Any], private_fields: frozenset[str]
) -> tuple[str, FieldSet, FieldSet]:
    """Primary-key name, every field, and the fields open to filters and sorts."""
    mapper = inspect(record_type)
    if len(mapper.primary_key) != 1:
        raise ValueError(f"{record_type.__name__} needs a single-column primary key")
    pk = mapper.get_property_by_column(mapper.primary_key[0]).key
    columns = record_fields(record_type)
    # Secrets (password hashes) are written but never filtered or sorted on: a
    # `__like` filter on a hash would be an oracle for it.
    queryable = FieldSet(f for f in columns if f.name not in private_fields)
    return pk, FieldSet(columns), queryable


class SqlAlchemyRepository(Generic[RecordT]):
    """Data access for one record type inside one `AsyncSession` (one transaction).

    Contract:
    - Reads hide rows whose `deleted_at` is set (for records that have it) unless
      `include_deleted`; `get`/`update`/`soft_delete` address rows by primary key.
    - Field names are checked against the mapped columns (less `private_fields`, which
      can be written but not queried); an unknown name, a value of the wrong type or a
      malformed cursor raises `InvalidQueryError` before any SQL.
    - Lists sort by the requested keys then the primary key (a total order), put NULLs
      after values, and return `next_cursor` whenever more rows follow; the cursor
      continues an offset page too. `Page.total` is not computed (use `count`).
    - Writes are flushed at once, so constraint violations surface at the call:
      `ConflictError`, or the error `constraint_errors` maps the constraint name to.
      After one, the transaction must be rolled back. Driver outages and timeouts raise
      `UnavailableError(dependency="database")`. Nothing is committed here.
    """

    def __init__(
        self,
        session: AsyncSession,
        record_type: type[RecordT],
        *,
        constraint_errors: ConstraintErrors | None = None,
        private_fields: Collection[str] = (),
    ) -> None:
        self._session = session
        self._record = record_type
        self._constraint_errors = dict(constraint_errors or {})
        # Repositories are built per unit of work (per request): the mapper inspection
        # is done once per record type.
        self._pk, self._fields, self._queryable = _describe(record_type, frozenset(private_fields))
        self._soft_delete = _SOFT_DELETE in self._fields

    @property
    def record_type(self) -> type[RecordT]:
        return self._record

    def _errors(self) -> AbstractContextManager[None]:
        return database_errors(self._constraint_errors, self._record.metadata)

    def _pk_column(self) -> ColumnElement[Any]:
        return self._fields[self._pk].expression

    def _live(self, record: Any, include_deleted: bool) -> list[ColumnElement[bool]]:
        column = getattr(record, _SOFT_DELETE, None)
        if include_deleted or column is None:
            return []
        return [column.is_(None)]

    def _conditions(
        self, conditions: Sequence[Condition], filters: Mapping[str, Any]
    ) -> list[ColumnElement[bool]]:
        return where_clauses(self._queryable, [*conditions, *parse_filters(dict(filters))])

    def _check_names(self, values: Mapping[str, Any]) -> None:
        for name in values:
            _ = self._fields[name]

    # Reads

    async def get(self, pk: Any, *, include_deleted: bool = False) -> RecordT | None:
        """The row with this primary key; None when unknown (or not a valid key at all)."""
        try:
            key = coerce_value(self._fields[self._pk], pk)
        except InvalidQueryError:
            return None
        return await self.find_one(
            Condition(self._pk, Operator.EQ, key), include_deleted=include_deleted
        )

    async def find_one(
        self, *conditions: Condition, include_deleted: bool = False, **filters: Any
    ) -> RecordT | None:
        """The first row (by primary key) matching every condition and filter, or None."""
        statement = (
            select(self._record)
            .where(
                *self._conditions(conditions, filters),
                *self._live(self._record, include_deleted),
            )
            .order_by(self._pk_column())
            .limit(1)
            .execution_options(populate_existing=True)
        )
        with self._errors():
            return (await self._session.execute(statement)).scalars().first()

    async def exists(
        self, *conditions: Condition, include_deleted: bool = False, **filters: Any
    ) -> bool:
        """Whether a row matches every condition (and `field__op=value` filter)."""
        clauses = [
            *self._conditions(conditions, filters),
            *self._live(self._record, include_deleted),
        ]
        statement = select(select(self._pk_column()).where(*clauses).exists())
        with self._errors():
            return bool((await self._session.execute(statement)).scalar())

    async def count(
        self, *conditions: Condition, include_deleted: bool = False, **filters: Any
    ) -> int:
        clauses = [
            *self._conditions(conditions, filters),
            *self._live(self._record, include_deleted),
        ]
        statement = select(func.count()).select_from(self._record).where(*clauses)
        with self._errors():
            return int((await self._session.execute(statement)).scalar_one())

    def _paginate(
        self,
        statement: Select[Any],
        fields: FieldSet,
        query: ListQuery,
        tiebreak: Sequence[str],
        extra: Sequence[ColumnElement[bool]],
    ) -> tuple[Select[Any], list[OrderKey]]:
        keys = order_keys(fields, query.sort, tiebreak)
        clauses = [*where_clauses(fields, query.conditions), *extra]
        if query.page.cursor is not None:
            clauses.append(keyset_after(keys, read_cursor(keys, query.page.cursor)))
        statement = statement.where(*clauses).order_by(*order_by(keys))
        if query.page.offset:
            statement = statement.offset(query.page.offset)
        return statement.limit(query.page.limit + 1), keys

    @staticmethod
    def _page(
        rows: Sequence[Any],
        keys: Sequence[OrderKey],
        limit: int,
        value: Callable[[Any, Field], Any],
    ) -> Page[Any]:
        items = builtins.list(rows[:limit])
        next_cursor = None
        if len(rows) > limit and items:
            last = items[-1]
            next_cursor = make_cursor(keys, [value(last, key.field) for key in keys])
        return Page(items=items, next_cursor=next_cursor)

    async def list(self, query: ListQuery) -> Page[RecordT]:
        statement, keys = self._paginate(
            select(self._record).execution_options(populate_existing=True),
            self._queryable,
            query,
            [self._pk],
            self._live(self._record, query.include_deleted),
        )
        with self._errors():
            rows = (await self._session.execute(statement)).scalars().all()
        return self._page(rows, keys, query.page.limit, lambda row, f: getattr(row, f.name))

    async def list_joined(
        self, query: ListQuery, joins: Sequence[JoinSpec]
    ) -> Page[dict[str, Any]]:
        """Rows of this record joined to others, as dicts of plain column values.

        Filters and sort keys may name the joined columns by their prefixed names. The
        tiebreak is every joined record's primary key after this one's, so the order
        stays total when a join multiplies rows. Nothing is loaded implicitly.
        """
        fields = builtins.list(record_fields(self._record))
        tiebreak = [self._pk]
        statement = select().select_from(self._record)
        for join in joins:
            fields.extend(record_fields(join.target, prefix=join.prefix, nullable=join.outer))
            mapper = inspect(join.target).mapper
            tiebreak.extend(
                f"{join.prefix}{mapper.get_property_by_column(column).key}"
                for column in mapper.primary_key
            )
            on = and_(join.on, *self._live(join.target, query.include_deleted))
            statement = statement.join(join.target, on, isouter=join.outer)
        statement = statement.add_columns(*(f.expression.label(f.name) for f in fields))
        statement, keys = self._paginate(
            statement,
            FieldSet(fields),
            query,
            tiebreak,
            self._live(self._record, query.include_deleted),
        )
        with self._errors():
            rows = (await self._session.execute(statement)).mappings().all()
        return self._page(
            [dict(row) for row in rows], keys, query.page.limit, lambda row, f: row[f.name]
        )

    # Writes

    async def add(self, record: RecordT) -> RecordT:
        """Insert one record; its primary key and defaults are set on return."""
        now = utcnow()
        for name in _TIMESTAMPS:
            if name in self._fields and getattr(record, name) is None:
                setattr(record, name, now)
        self._session.add(record)
        with self._errors():
            await self._session.flush()
        return record

    async def bulk_insert(self, rows: Sequence[Mapping[str, Any]]) -> builtins.list[Any]:
        """Insert many rows in one statement; returns their primary keys in input order."""
        if not rows:
            return []
        now = utcnow()
        prepared = []
        for row in rows:
            self._check_names(row)
            values = dict(row)
            for name in _TIMESTAMPS:
                if name in self._fields:
                    values.setdefault(name, now)
            prepared.append(values)
        statement = insert(self._record).returning(self._pk_column(), sort_by_parameter_order=True)
        with self._errors():
            result = await self._session.execute(statement, prepared)
        return builtins.list(result.scalars().all())

    async def update(
        self, pk: Any, values: Mapping[str, Any], *, include_deleted: bool = False
    ) -> RecordT | None:
        """Set `values` on one row (and refresh `updated_at`); None when there is no row."""
        self._check_names(values)
        if self._pk in values:
            raise InvalidQueryError("the primary key cannot be updated")
        record = await self.get(pk, include_deleted=include_deleted)
        if record is None:
            return None
        changes = dict(values)
        if _UPDATED_AT in self._fields and _UPDATED_AT not in changes:
            changes[_UPDATED_AT] = utcnow()
        for name, value in changes.items():
            setattr(record, name, value)
        with self._errors():
            await self._session.flush()
        return record

    async def bulk_update(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Update many rows by primary key (each dict carries it), soft-deleted or not.

        Raises `NotFoundError` and changes nothing when a key does not exist (the same on
        every backend: asyncpg cannot count the rows an executemany touched).
        """
        if not rows:
            return
        now = utcnow()
        prepared = []
        for row in rows:
            self._check_names(row)
            if self._pk not in row:
                raise InvalidQueryError(f"every row needs its '{self._pk}'")
            values = dict(row)
            values[self._pk] = coerce_value(self._fields[self._pk], values[self._pk])
            if _UPDATED_AT in self._fields:
                values.setdefault(_UPDATED_AT, now)
            prepared.append(values)
        keys = {values[self._pk] for values in prepared}
        found = select(func.count()).where(self._pk_column().in_(keys))
        with self._errors():
            if (await self._session.execute(found)).scalar_one() != len(keys):
                raise NotFoundError(f"some of the {self._record.__name__} rows do not exist")
            try:
                await self._session.execute(update(self._record), prepared)
            except StaleDataError as exc:
                raise NotFoundError(
                    f"some of the {self._record.__name__} rows do not exist"
                ) from exc

    async def soft_delete(self, pk: Any, at: datetime | None = None) -> bool:
        """Mark a row deleted (keeping the first deletion time); False when it is unknown."""
        if not self._soft_delete:
            raise TypeError(f"{self._record.__name__} has no '{_SOFT_DELETE}' column")
        record = await self.get(pk, include_deleted=True)
        if record is None:
            return False
        if getattr(record, _SOFT_DELETE) is None:
            setattr(record, _SOFT_DELETE, at or utcnow())
            with self._errors():
                await self._session.flush()
        return True
