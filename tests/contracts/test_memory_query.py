"""The in-memory query evaluator answers the shared query cases exactly as SQL does."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest

from adapters.memory.query import QueryEvaluator, dataclass_field_types, like_pattern
from core.shared.query import InvalidQueryError, ListQuery, Page, PageRequest, parse_sort
from tests.contracts.query_cases import (
    BAD_QUERIES,
    BASE_TIME,
    CURSOR_SORTS,
    GADGETS,
    OPERATOR_CASES,
    SORT_CASES,
    q,
)


@dataclass
class Gadget:
    id: int
    name: str
    category: str | None
    price: int
    rating: float
    in_stock: bool
    maker_id: int | None
    created_at: datetime
    deleted_at: datetime | None = None


ROWS = [
    Gadget(n, name, category, price, rating, in_stock, maker, BASE_TIME + timedelta(minutes=m))
    for n, (name, category, price, rating, in_stock, maker, m) in enumerate(GADGETS, start=1)
]
EVALUATOR = QueryEvaluator(dataclass_field_types(Gadget))


def names(page: Page[Gadget]) -> list[str]:
    return [row.name for row in page.items]


@pytest.mark.parametrize(("filters", "expected"), OPERATOR_CASES)
def test_every_operator_matches_sql(filters: dict[str, Any], expected: list[str]) -> None:
    assert names(EVALUATOR.page(ROWS, q(filters))) == expected


@pytest.mark.parametrize(("sort", "expected"), SORT_CASES)
def test_sorting_matches_sql(sort: str, expected: list[str]) -> None:
    assert names(EVALUATOR.page(ROWS, q(sort=sort))) == expected


@pytest.mark.parametrize("sort", CURSOR_SORTS)
@pytest.mark.parametrize("limit", [1, 3])
def test_cursor_walks_every_row_once(sort: str, limit: int) -> None:
    expected = names(EVALUATOR.page(ROWS, q(sort=sort, limit=100)))
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = EVALUATOR.page(ROWS, q(sort=sort, limit=limit, cursor=cursor))
        assert len(page.items) <= limit
        seen.extend(names(page))
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == expected and len(seen) == len(ROWS)


def test_offset_pages_and_their_cursor_continues() -> None:
    middle = EVALUATOR.page(ROWS, q(sort="-created_at", limit=3, offset=3))
    assert names(middle) == ["Drill_X", "Crank", "Bolt"]
    after = EVALUATOR.page(ROWS, q(sort="-created_at", limit=5, cursor=middle.next_cursor))
    assert names(after) == ["anvil-mini", "Anvil"] and after.next_cursor is None


def test_soft_deleted_rows_are_hidden_unless_included() -> None:
    rows = [*ROWS[:2], Gadget(9, "Gone", None, 1, 1.0, True, None, BASE_TIME, BASE_TIME)]
    assert "Gone" not in names(EVALUATOR.page(rows, ListQuery()))
    assert "Gone" in names(EVALUATOR.page(rows, ListQuery(include_deleted=True)))


@pytest.mark.parametrize("query", BAD_QUERIES)
def test_bad_queries_are_refused(query: ListQuery) -> None:
    with pytest.raises(InvalidQueryError):
        EVALUATOR.page(ROWS, query)


def test_a_cursor_from_another_sort_is_refused() -> None:
    page = EVALUATOR.page(ROWS, q(sort="price", limit=2))
    other_sort = ListQuery(sort=parse_sort("-price"), page=PageRequest(cursor=page.next_cursor))
    with pytest.raises(InvalidQueryError):
        EVALUATOR.page(ROWS, other_sort)


@pytest.mark.parametrize(
    ("pattern", "text", "ignore_case", "matches"),
    [
        ("a%", "abc", False, True),
        ("a%", "Abc", False, False),
        ("a%", "Abc", True, True),
        ("a_c", "abc", False, True),
        ("a_c", "abbc", False, False),
        ("100\\%", "100%", False, True),
        ("100\\%", "1000", False, False),
        ("a.c", "abc", False, False),  # regex characters are literal
        ("%", "line\nbreak", False, True),
    ],
)
def test_like_patterns(pattern: str, text: str, ignore_case: bool, matches: bool) -> None:
    assert (like_pattern(pattern, ignore_case=ignore_case).fullmatch(text) is not None) is matches
