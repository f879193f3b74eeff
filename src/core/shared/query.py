"""The query vocabulary shared by every repository: filters, sort keys, page requests.

Services and routes speak this vocabulary; the SQL adapter's generic repository turns it
into SQL and the in-memory adapters evaluate it in Python. Parsing happens here so every
adapter rejects the same bad input with the same error.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum, StrEnum
from typing import Any, Generic, TypeVar

from core.shared.errors import RuleViolationError

T = TypeVar("T")

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


class InvalidQueryError(RuleViolationError):
    code = "invalid_query"
    default_detail = "The filter, sort or pagination parameters are not valid."


class Operator(StrEnum):
    EQ = "eq"
    NE = "ne"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    IN = "in"
    NOT_IN = "not_in"
    BETWEEN = "between"
    LIKE = "like"
    ILIKE = "ilike"
    ISNULL = "isnull"


_SUFFIXES = {op.value: op for op in Operator if op is not Operator.EQ}


@dataclass(frozen=True, slots=True)
class Condition:
    """`field <op> value`. `in`/`not_in` take a sequence, `between` a pair, `isnull` a bool."""

    field: str
    op: Operator
    value: Any

    def __post_init__(self) -> None:
        if self.op in (Operator.IN, Operator.NOT_IN):
            if isinstance(self.value, (str, bytes)) or not hasattr(self.value, "__iter__"):
                raise InvalidQueryError(f"'{self.field}__{self.op.value}' needs a list")
            object.__setattr__(self, "value", tuple(self.value))
        elif self.op is Operator.BETWEEN:
            if isinstance(self.value, (str, bytes)) or len(tuple(self.value)) != 2:
                raise InvalidQueryError(f"'{self.field}__between' needs two values")
            object.__setattr__(self, "value", tuple(self.value))
        elif self.op is Operator.ISNULL and not isinstance(self.value, bool):
            raise InvalidQueryError(f"'{self.field}__isnull' needs true or false")
        elif self.op in (Operator.LIKE, Operator.ILIKE) and not isinstance(self.value, str):
            raise InvalidQueryError(f"'{self.field}__{self.op.value}' needs a string pattern")


def parse_filters(filters: dict[str, Any] | None) -> tuple[Condition, ...]:
    """Turn `{"age__gte": 18, "name": "x"}` into conditions. Unknown operators are errors."""
    conditions: list[Condition] = []
    for key, value in (filters or {}).items():
        name, sep, suffix = key.rpartition("__")
        if sep and suffix in _SUFFIXES:
            conditions.append(Condition(name, _SUFFIXES[suffix], value))
        elif sep and suffix == "eq":
            conditions.append(Condition(name, Operator.EQ, value))
        else:
            conditions.append(Condition(key, Operator.EQ, value))
    return tuple(conditions)


@dataclass(frozen=True, slots=True)
class SortKey:
    field: str
    descending: bool = False


def parse_sort(spec: str | None) -> tuple[SortKey, ...]:
    """`"-created_at,id"` -> created_at descending, then id ascending."""
    if not spec:
        return ()
    keys: list[SortKey] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        descending = part.startswith("-")
        name = part.lstrip("+-")
        if not name.isidentifier():
            raise InvalidQueryError(f"'{part}' is not a sortable field")
        keys.append(SortKey(name, descending))
    return tuple(keys)


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Offset or cursor pagination (never both)."""

    limit: int = DEFAULT_PAGE_SIZE
    offset: int | None = None
    cursor: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_PAGE_SIZE:
            raise InvalidQueryError(f"limit must be between 1 and {MAX_PAGE_SIZE}")
        if self.offset is not None and self.offset < 0:
            raise InvalidQueryError("offset must not be negative")
        if self.offset is not None and self.cursor is not None:
            raise InvalidQueryError("use either offset or cursor, not both")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None = None
    total: int | None = None


@dataclass(frozen=True, slots=True)
class ListQuery:
    """Everything a list call needs: conditions, sort keys, page, soft-delete visibility."""

    conditions: tuple[Condition, ...] = ()
    sort: tuple[SortKey, ...] = ()
    page: PageRequest = field(default_factory=PageRequest)
    include_deleted: bool = False


def encode_cursor(values: list[Any]) -> str:
    """An opaque cursor holding the sort-key values of the last row of a page."""
    raw = json.dumps(values, separators=(",", ":"), default=str).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, expected_length: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise InvalidQueryError("the cursor is not valid") from exc
    if not isinstance(values, list) or len(values) != expected_length:
        raise InvalidQueryError("the cursor does not match this query")
    return values


def _bad(name: str, kind: type | None, value: Any) -> InvalidQueryError:
    expected = kind.__name__ if kind else "value"
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return InvalidQueryError(f"'{name}' needs a {expected}, not {shown}")


def coerce_value(name: str, kind: type | None, value: Any) -> Any:
    """Convert a filter value (often query-string text) to a field's Python type.

    Every adapter coerces through here, so all of them accept and refuse the same values.
    `kind` None means: no conversion.
    """
    if value is None or kind is None:
        return value
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "1", "false", "0"):
                return value.lower() in ("true", "1")
        elif kind is int:
            if isinstance(value, int | str) and not isinstance(value, bool):
                return int(value)
        elif kind is float:
            if isinstance(value, int | float | str) and not isinstance(value, bool):
                return float(value)
        elif kind is Decimal:
            if isinstance(value, int | str | Decimal) and not isinstance(value, bool):
                return Decimal(value)
        elif kind is str:
            if isinstance(value, str) and "\x00" not in value:
                return value
        elif kind is datetime:
            moment = datetime.fromisoformat(value) if isinstance(value, str) else value
            if isinstance(moment, datetime):
                return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        elif kind is date:
            day = date.fromisoformat(value) if isinstance(value, str) else value
            if isinstance(day, date) and not isinstance(day, datetime):
                return day
        elif kind is uuid.UUID:
            return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
        elif issubclass(kind, Enum):
            return kind(value)
        elif isinstance(value, kind):
            return value
    except (ValueError, TypeError, InvalidOperation, ArithmeticError) as exc:
        raise _bad(name, kind, value) from exc
    raise _bad(name, kind, value)
