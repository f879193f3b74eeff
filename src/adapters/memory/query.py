"""Evaluating the core query vocabulary in Python, with the SQL adapter's semantics.

Used by every in-memory repository. The rules mirror `adapters.sqlalchemy.query`:
- only known fields can be named, and values are coerced to the field's type, so bad
  input raises the same `InvalidQueryError`;
- a comparison with a missing value (None) is false, as with SQL NULL; `eq`/`ne` with
  None mean "is null"/"is not null"; `like`/`ilike` use `%`, `_` and `\\` as escape;
- sorting puts None after every value (ascending) and before (descending), then breaks
  ties on the primary key; cursors hold the last row's sort values.
"""

from __future__ import annotations

import functools
import re
import types
import typing
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, TypeVar

from core.shared.query import (
    Condition,
    InvalidQueryError,
    ListQuery,
    Operator,
    Page,
    SortKey,
    coerce_value,
    decode_cursor,
    encode_cursor,
)

T = TypeVar("T")

Getter = Callable[[Any, str], Any]


def dataclass_field_types(cls: type[Any]) -> dict[str, type | None]:
    """Field name -> Python type (Optional unwrapped) of a dataclass, for coercion."""
    if not is_dataclass(cls):
        raise TypeError(f"{cls.__name__} is not a dataclass")
    hints = typing.get_type_hints(cls)
    result: dict[str, type | None] = {}
    for field in fields(cls):
        hint = hints.get(field.name)
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
            options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
            hint = options[0] if len(options) == 1 else None
        result[field.name] = hint if isinstance(hint, type) else None
    return result


def like_pattern(pattern: str, *, ignore_case: bool) -> re.Pattern[str]:
    """SQL LIKE as a regex: `%` any run, `_` one character, `\\` escapes the next one."""
    parts: list[str] = []
    escaped = False
    for char in pattern:
        if escaped:
            parts.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    if escaped:
        parts.append(re.escape("\\"))
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.compile("".join(parts), flags)


@dataclass(frozen=True, slots=True)
class _Predicate:
    field: str
    test: Callable[[Any], bool]


class QueryEvaluator:
    """Filters, sorts and pages objects whose fields have the given types.

    `field_types` names every field a query may use (others are `InvalidQueryError`);
    `pk` is the unique tiebreak field; `get` reads a field from an object (`getattr`
    by default). Objects with a non-None `deleted_at` are hidden unless the query
    includes deleted rows (when `deleted_at` is one of the fields).
    """

    def __init__(
        self,
        field_types: Mapping[str, type | None],
        *,
        pk: str = "id",
        get: Getter = getattr,
    ) -> None:
        if pk not in field_types:
            raise ValueError(f"the primary key {pk!r} is not a field")
        self._types = dict(field_types)
        self._pk = pk
        self._get = get

    def _field(self, name: str) -> type | None:
        if name not in self._types:
            raise InvalidQueryError(f"'{name}' is not a known field")
        return self._types[name]

    def coerce(self, name: str, value: Any) -> Any:
        return coerce_value(name, self._field(name), value)

    def _needs(self, condition: Condition, value: Any) -> Any:
        if value is None:
            raise InvalidQueryError(
                f"'{condition.field}__{condition.op.value}' needs a value; use '__isnull' for NULL"
            )
        return self.coerce(condition.field, value)

    def _predicate(self, condition: Condition) -> _Predicate:
        name, op, value = condition.field, condition.op, condition.value
        kind = self._field(name)

        def present(test: Callable[[Any], bool]) -> Callable[[Any], bool]:
            return lambda actual: actual is not None and test(actual)

        if op in (Operator.EQ, Operator.NE):
            target = self.coerce(name, value)
            equal = op is Operator.EQ
            if target is None:
                return _Predicate(name, lambda actual: (actual is None) is equal)
            return _Predicate(name, present(lambda actual: (actual == target) is equal))
        if op in (Operator.GT, Operator.GTE, Operator.LT, Operator.LTE):
            bound = self._needs(condition, value)
            compare: Callable[[Any], bool] = {
                Operator.GT: lambda actual: actual > bound,
                Operator.GTE: lambda actual: actual >= bound,
                Operator.LT: lambda actual: actual < bound,
                Operator.LTE: lambda actual: actual <= bound,
            }[op]
            return _Predicate(name, present(compare))
        if op is Operator.IN:
            members = [self._needs(condition, item) for item in value]
            return _Predicate(name, present(lambda actual: actual in members))
        if op is Operator.NOT_IN:
            excluded = [self._needs(condition, item) for item in value]
            if not excluded:  # SQL: x NOT IN () is true, even for NULL
                return _Predicate(name, lambda actual: True)
            return _Predicate(name, present(lambda actual: actual not in excluded))
        if op is Operator.BETWEEN:
            low, high = (self._needs(condition, item) for item in value)
            return _Predicate(name, present(lambda actual: low <= actual <= high))
        if op in (Operator.LIKE, Operator.ILIKE):
            if kind is not str:
                raise InvalidQueryError(f"'{name}' is not text; '{op.value}' needs text")
            regex = like_pattern(self.coerce(name, value), ignore_case=op is Operator.ILIKE)
            return _Predicate(name, present(lambda actual: regex.fullmatch(actual) is not None))
        if op is Operator.ISNULL:
            return _Predicate(name, lambda actual: (actual is None) is value)
        raise InvalidQueryError(f"unsupported operator {op!r}")

    def matcher(
        self, conditions: Iterable[Condition], *, include_deleted: bool = False
    ) -> Callable[[Any], bool]:
        """A test for one object; built once, so bad conditions fail before any row."""
        predicates = [self._predicate(condition) for condition in conditions]
        hide_deleted = not include_deleted and "deleted_at" in self._types
        get = self._get

        def matches(item: Any) -> bool:
            if hide_deleted and get(item, "deleted_at") is not None:
                return False
            return all(p.test(get(item, p.field)) for p in predicates)

        return matches

    def _keys(self, sort: Sequence[SortKey]) -> list[SortKey]:
        seen: set[str] = set()
        keys: list[SortKey] = []
        for key in sort:
            self._field(key.field)
            if key.field in seen:
                raise InvalidQueryError(f"'{key.field}' appears twice in the sort")
            seen.add(key.field)
            keys.append(key)
        if self._pk not in seen:
            keys.append(SortKey(self._pk))
        return keys

    @staticmethod
    def _compare(keys: Sequence[SortKey], left: Sequence[Any], right: Sequence[Any]) -> int:
        for key, a, b in zip(keys, left, right, strict=True):
            if a == b or (a is None and b is None):
                continue
            # None is the largest value: last ascending, first descending.
            if a is None:
                order = 1
            elif b is None:
                order = -1
            else:
                order = -1 if a < b else 1
            return -order if key.descending else order
        return 0

    def page(self, items: Iterable[T], query: ListQuery) -> Page[T]:
        """Apply `query` (filters, soft-delete visibility, sort, offset or cursor, limit)."""
        keys = self._keys(query.sort)
        matches = self.matcher(query.conditions, include_deleted=query.include_deleted)
        after = self._read_cursor(keys, query.page.cursor) if query.page.cursor else None

        def row_key(item: Any) -> list[Any]:
            return [self._get(item, key.field) for key in keys]

        rows = [item for item in items if matches(item)]
        if after is not None:
            rows = [item for item in rows if self._compare(keys, row_key(item), after) > 0]
        rows.sort(
            key=functools.cmp_to_key(lambda a, b: self._compare(keys, row_key(a), row_key(b)))
        )
        start = query.page.offset or 0
        window = rows[start : start + query.page.limit + 1]
        page = window[: query.page.limit]
        next_cursor = None
        if len(window) > query.page.limit and page:
            next_cursor = self._make_cursor(keys, row_key(page[-1]))
        return Page(items=page, next_cursor=next_cursor)

    @staticmethod
    def _signature(keys: Sequence[SortKey]) -> str:
        return ",".join(("-" if key.descending else "") + key.field for key in keys)

    def _make_cursor(self, keys: Sequence[SortKey], values: Sequence[Any]) -> str:
        return encode_cursor([*(_json_value(value) for value in values), self._signature(keys)])

    def _read_cursor(self, keys: Sequence[SortKey], cursor: str) -> list[Any]:
        raw = decode_cursor(cursor, len(keys) + 1)
        if raw[-1] != self._signature(keys):
            raise InvalidQueryError("the cursor does not match this query")
        return [self.coerce(key.field, value) for key, value in zip(keys, raw, strict=False)]


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    return value
