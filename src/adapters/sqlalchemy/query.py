"""Turning the core query vocabulary into SQL.

Only mapped columns can be named (an unknown name is an `InvalidQueryError`, never SQL),
and every value is coerced to its column's Python type first, so bad input fails here
instead of in the driver.

Ordering puts NULL after every value (ascending `NULLS LAST`, descending `NULLS FIRST`,
Postgres's own default), and keyset pagination uses the same rule, so cursors stay correct
on nullable columns and on outer joins.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import BigInteger, SmallInteger, and_, false, inspect, literal, or_
from sqlalchemy.orm.util import AliasedClass
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeEngine

from core.shared.query import (
    Condition,
    InvalidQueryError,
    Operator,
    SortKey,
    decode_cursor,
    encode_cursor,
)
from core.shared.query import (
    coerce_value as coerce_to_type,
)

_INT_BITS = {SmallInteger: 16, BigInteger: 64}


@dataclass(frozen=True, slots=True)
class Field:
    """A column that may be filtered and sorted on, under its public name."""

    name: str
    expression: ColumnElement[Any]
    python_type: type | None
    nullable: bool
    int_bits: int = 32


def _python_type(column_type: TypeEngine[Any]) -> type | None:
    try:
        kind = column_type.python_type
    except NotImplementedError:
        return None
    return None if kind is object else kind


def _int_bits(column_type: TypeEngine[Any]) -> int:
    for type_class, bits in _INT_BITS.items():
        if isinstance(column_type, type_class):
            return bits
    return 32


def record_fields(
    record: type[Any] | AliasedClass[Any], *, prefix: str = "", nullable: bool = False
) -> list[Field]:
    """The filterable/sortable fields of a mapped record: its column attributes.

    `nullable=True` marks every field nullable (the columns of an outer-joined record).
    """
    fields = []
    for attribute in inspect(record).mapper.column_attrs:
        column = attribute.columns[0]
        fields.append(
            Field(
                name=f"{prefix}{attribute.key}",
                expression=getattr(record, attribute.key),
                python_type=_python_type(column.type),
                nullable=nullable or bool(getattr(column, "nullable", True)),
                int_bits=_int_bits(column.type),
            )
        )
    return fields


class FieldSet:
    """Name -> field lookup that refuses unknown names."""

    def __init__(self, fields: Iterable[Field]) -> None:
        self._fields: dict[str, Field] = {}
        for field in fields:
            if field.name in self._fields:
                raise ValueError(f"two fields are named {field.name!r}; use a join prefix")
            self._fields[field.name] = field

    def __getitem__(self, name: str) -> Field:
        try:
            return self._fields[name]
        except KeyError:
            raise InvalidQueryError(f"'{name}' is not a known field") from None

    def __contains__(self, name: object) -> bool:
        return name in self._fields


def _bad(field: Field, value: Any) -> InvalidQueryError:
    expected = field.python_type.__name__ if field.python_type else "value"
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return InvalidQueryError(f"'{field.name}' needs a {expected}, not {shown}")


def coerce_value(field: Field, value: Any) -> Any:
    """Convert `value` (possibly a query-string text) to the field's Python type.

    The shared rules of `core.shared.query.coerce_value`, plus the column's integer
    range, so an out-of-range filter is a 4xx instead of a driver overflow error.
    """
    coerced = coerce_to_type(field.name, field.python_type, value)
    if field.python_type is int and coerced is not None:
        limit = 1 << (field.int_bits - 1)
        if not -limit <= coerced < limit:
            raise _bad(field, value)
    return coerced


def _bind(field: Field, value: Any) -> ColumnElement[Any]:
    # An explicit bound parameter of the column's type: SQLAlchemy refuses `col < True`
    # with a bare literal, and the type decorator must see every value.
    return literal(value, type_=field.expression.type)


def _required(field: Field, condition: Condition, value: Any) -> Any:
    if value is None:
        raise InvalidQueryError(
            f"'{field.name}__{condition.op.value}' needs a value; use '__isnull' for NULL"
        )
    return coerce_value(field, value)


def _needs_value(field: Field, condition: Condition, value: Any) -> ColumnElement[Any]:
    return _bind(field, _required(field, condition, value))


def condition_clause(fields: FieldSet, condition: Condition) -> ColumnElement[bool]:
    field = fields[condition.field]
    column = field.expression
    op, value = condition.op, condition.value
    if op is Operator.EQ:
        return (
            column.is_(None)
            if value is None
            else column == _bind(field, coerce_value(field, value))
        )
    if op is Operator.NE:
        return (
            column.is_not(None)
            if value is None
            else column != _bind(field, coerce_value(field, value))
        )
    if op is Operator.GT:
        return column > _needs_value(field, condition, value)
    if op is Operator.GTE:
        return column >= _needs_value(field, condition, value)
    if op is Operator.LT:
        return column < _needs_value(field, condition, value)
    if op is Operator.LTE:
        return column <= _needs_value(field, condition, value)
    if op is Operator.IN:
        return column.in_([_required(field, condition, item) for item in value])
    if op is Operator.NOT_IN:
        return column.not_in([_required(field, condition, item) for item in value])
    if op is Operator.BETWEEN:
        low, high = (_needs_value(field, condition, item) for item in value)
        return column.between(low, high)
    if op in (Operator.LIKE, Operator.ILIKE):
        if field.python_type is not str:
            raise InvalidQueryError(f"'{field.name}' is not text; '{op.value}' needs text")
        pattern = coerce_value(field, value)
        # One escape character on every backend (Postgres defaults to it, SQLite has none).
        if op is Operator.LIKE:
            return column.like(pattern, escape="\\")
        return column.ilike(pattern, escape="\\")
    if op is Operator.ISNULL:
        return column.is_(None) if value else column.is_not(None)
    raise InvalidQueryError(f"unsupported operator {op!r}")


def where_clauses(fields: FieldSet, conditions: Iterable[Condition]) -> list[ColumnElement[bool]]:
    return [condition_clause(fields, condition) for condition in conditions]


@dataclass(frozen=True, slots=True)
class OrderKey:
    field: Field
    descending: bool


def order_keys(
    fields: FieldSet, sort: Sequence[SortKey], tiebreak: Sequence[str]
) -> list[OrderKey]:
    """The requested sort, then the unique tiebreak columns not already in it."""
    keys: list[OrderKey] = []
    seen: set[str] = set()
    for key in sort:
        if key.field in seen:
            raise InvalidQueryError(f"'{key.field}' appears twice in the sort")
        seen.add(key.field)
        keys.append(OrderKey(fields[key.field], key.descending))
    keys.extend(OrderKey(fields[name], False) for name in tiebreak if name not in seen)
    return keys


def order_by(keys: Sequence[OrderKey]) -> list[ColumnElement[Any]]:
    clauses: list[ColumnElement[Any]] = []
    for key in keys:
        column = key.field.expression
        if key.descending:
            clause = column.desc().nulls_first() if key.field.nullable else column.desc()
        else:
            clause = column.asc().nulls_last() if key.field.nullable else column.asc()
        clauses.append(clause)
    return clauses


def _strictly_after(key: OrderKey, value: Any) -> ColumnElement[bool] | None:
    column = key.field.expression
    if key.descending:
        return column.is_not(None) if value is None else column < _bind(key.field, value)
    if value is None:
        return None  # NULL sorts last ascending: nothing comes after it
    if key.field.nullable:
        return or_(column > _bind(key.field, value), column.is_(None))
    return column > _bind(key.field, value)


def keyset_after(keys: Sequence[OrderKey], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows that sort strictly after the row whose key values are `values`."""
    disjuncts: list[ColumnElement[bool]] = []
    equal_so_far: list[ColumnElement[bool]] = []
    for key, value in zip(keys, values, strict=True):
        after = _strictly_after(key, value)
        if after is not None:
            disjuncts.append(and_(*equal_so_far, after))
        column = key.field.expression
        equal_so_far.append(
            column.is_(None) if value is None else column == _bind(key.field, value)
        )
    return or_(*disjuncts) if disjuncts else false()


def _signature(keys: Sequence[OrderKey]) -> str:
    return ",".join(("-" if key.descending else "") + key.field.name for key in keys)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    return value


def make_cursor(keys: Sequence[OrderKey], values: Sequence[Any]) -> str:
    """A cursor after the row with these key values, bound to this sort order."""
    return encode_cursor([*(_json_value(value) for value in values), _signature(keys)])


def read_cursor(keys: Sequence[OrderKey], cursor: str) -> list[Any]:
    raw = decode_cursor(cursor, len(keys) + 1)
    if raw[-1] != _signature(keys):
        raise InvalidQueryError("the cursor does not match this query")
    return [coerce_value(key.field, value) for key, value in zip(keys, raw, strict=False)]
