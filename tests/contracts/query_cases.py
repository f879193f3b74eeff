"""Query cases shared by the SQL generic-repository tests and the in-memory evaluator tests.

The same data and the same expected answers for both, so the fake cannot drift from SQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from core.shared.query import ListQuery, PageRequest, parse_filters, parse_sort

BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)

# name, category, price, rating, in_stock, maker_id, minutes after BASE_TIME
GADGETS = [
    ("Anvil", "tools", 30, 4.5, True, 1, 0),
    ("anvil-mini", "tools", 10, 3.0, False, 1, 1),
    ("Bolt", None, 10, 4.0, True, 2, 2),
    ("Crank", "parts", 20, 4.5, True, None, 3),
    ("Drill_X", "tools", 30, 2.5, True, 2, 4),
    ("Epoxy 100%", None, 5, 4.0, False, None, 5),
    ("Flange", "parts", 10, 4.5, True, 1, 6),
    ("Gear", "parts", 20, 1.0, True, 2, 7),
]


def q(filters: dict[str, Any] | None = None, sort: str = "id", **page: Any) -> ListQuery:
    return ListQuery(
        conditions=parse_filters(filters), sort=parse_sort(sort), page=PageRequest(**page)
    )


OPERATOR_CASES = [
    ({"price": 10}, ["anvil-mini", "Bolt", "Flange"]),
    ({"price__eq": "20"}, ["Crank", "Gear"]),
    ({"category": None}, ["Bolt", "Epoxy 100%"]),
    # SQL semantics: NULL is neither equal nor unequal to "tools".
    ({"category__ne": "tools"}, ["Crank", "Flange", "Gear"]),
    ({"category__ne": None}, ["Anvil", "anvil-mini", "Crank", "Drill_X", "Flange", "Gear"]),
    ({"price__gt": 20}, ["Anvil", "Drill_X"]),
    ({"price__gte": 20}, ["Anvil", "Crank", "Drill_X", "Gear"]),
    ({"price__lt": 10}, ["Epoxy 100%"]),
    ({"price__lte": 10}, ["anvil-mini", "Bolt", "Epoxy 100%", "Flange"]),
    ({"rating__gte": "4.5"}, ["Anvil", "Crank", "Flange"]),
    ({"name__in": ["Bolt", "Gear", "Nope"]}, ["Bolt", "Gear"]),
    ({"name__in": []}, []),
    ({"category__not_in": ["tools"]}, ["Crank", "Flange", "Gear"]),
    ({"price__between": [10, 20]}, ["anvil-mini", "Bolt", "Crank", "Flange", "Gear"]),
    ({"name__like": "A%"}, ["Anvil"]),  # case-sensitive on every backend
    ({"name__ilike": "a%"}, ["Anvil", "anvil-mini"]),
    ({"name__like": "Drill\\_%"}, ["Drill_X"]),  # escaped underscore
    ({"name__like": "%\\%"}, ["Epoxy 100%"]),  # escaped percent
    ({"name__like": "_olt"}, ["Bolt"]),
    ({"category__isnull": True}, ["Bolt", "Epoxy 100%"]),
    ({"category__isnull": False}, ["Anvil", "anvil-mini", "Crank", "Drill_X", "Flange", "Gear"]),
    ({"in_stock": "false"}, ["anvil-mini", "Epoxy 100%"]),
    ({"in_stock__ne": True}, ["anvil-mini", "Epoxy 100%"]),
    ({"created_at__gte": "2026-01-01T00:06:00Z"}, ["Flange", "Gear"]),
    (
        {"created_at__between": ["2026-01-01T01:01:00+01:00", "2026-01-01T00:02:00+00:00"]},
        ["anvil-mini", "Bolt"],
    ),
    ({"maker_id__isnull": True, "price__gt": 5}, ["Crank"]),
]


SORT_CASES = [
    (
        "-price,name",
        ["Anvil", "Drill_X", "Crank", "Gear", "Bolt", "Flange", "anvil-mini", "Epoxy 100%"],
    ),
    # NULL sorts after every value ascending and before every value descending.
    (
        "category,-rating",
        ["Crank", "Flange", "Gear", "Anvil", "anvil-mini", "Drill_X", "Bolt", "Epoxy 100%"],
    ),
    (
        "-category,price",
        ["Epoxy 100%", "Bolt", "anvil-mini", "Anvil", "Drill_X", "Flange", "Crank", "Gear"],
    ),
    # Ties fall back to the primary key.
    ("rating", ["Gear", "Drill_X", "anvil-mini", "Bolt", "Epoxy 100%", "Anvil", "Crank", "Flange"]),
    # Code-point order: upper case before lower case.
    ("name", ["Anvil", "Bolt", "Crank", "Drill_X", "Epoxy 100%", "Flange", "Gear", "anvil-mini"]),
]

CURSOR_SORTS = [
    "price",
    "-price",
    "price,-rating",
    "-rating,name",
    "category,-price",
    "-category",
    "-created_at",
    "in_stock,-maker_id",
]


# Refused by every adapter before any row is read.
BAD_QUERIES = [
    q({"colour": "red"}),
    q({"price__gt": "cheap"}),
    q({"price__gt": None}),
    q({"price__like": "1%"}),
    q({"name": "nul\x00byte"}),
    q({"created_at__gte": "yesterday"}),
    q({"in_stock": "maybe"}),
    q(sort="colour"),
    q(sort="price,-price"),
    q(cursor="%%%"),
    q(cursor="bm90IGpzb24"),
]
