from __future__ import annotations

import pytest

from core.shared.query import (
    Condition,
    InvalidQueryError,
    Operator,
    PageRequest,
    SortKey,
    decode_cursor,
    encode_cursor,
    parse_filters,
    parse_sort,
)


def test_filters_parse_every_operator_suffix() -> None:
    parsed = parse_filters(
        {
            "age__gte": 18,
            "name": "ada",
            "id__in": [1, 2],
            "score__between": (1, 5),
            "deleted_at__isnull": True,
            "email__ilike": "%@x.org",
            "tier__eq": "pro",
        }
    )
    assert parsed == (
        Condition("age", Operator.GTE, 18),
        Condition("name", Operator.EQ, "ada"),
        Condition("id", Operator.IN, (1, 2)),
        Condition("score", Operator.BETWEEN, (1, 5)),
        Condition("deleted_at", Operator.ISNULL, True),
        Condition("email", Operator.ILIKE, "%@x.org"),
        Condition("tier", Operator.EQ, "pro"),
    )


def test_a_field_name_with_double_underscore_but_no_operator_is_equality() -> None:
    assert parse_filters({"a__b": 1}) == (Condition("a__b", Operator.EQ, 1),)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("id__in", 3),
        ("id__in", "12"),
        ("x__between", (1, 2, 3)),
        ("x__isnull", "yes"),
        ("x__like", 5),
    ],
)
def test_operator_values_are_checked(key: str, value: object) -> None:
    with pytest.raises(InvalidQueryError):
        parse_filters({key: value})


def test_sort_spec() -> None:
    assert parse_sort("-created_at, id") == (SortKey("created_at", True), SortKey("id", False))
    assert parse_sort(None) == ()
    with pytest.raises(InvalidQueryError):
        parse_sort("name;drop")


@pytest.mark.parametrize(
    "kwargs", [{"limit": 0}, {"limit": 101}, {"offset": -1}, {"offset": 1, "cursor": "x"}]
)
def test_page_request_bounds(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidQueryError):
        PageRequest(**kwargs)  # type: ignore[arg-type]


def test_cursor_round_trip_and_tampering() -> None:
    cursor = encode_cursor(["2026-01-01T00:00:00+00:00", 7])
    assert decode_cursor(cursor, 2) == ["2026-01-01T00:00:00+00:00", 7]
    with pytest.raises(InvalidQueryError):
        decode_cursor(cursor, 3)
    with pytest.raises(InvalidQueryError):
        decode_cursor("!!not-base64!!", 2)
    with pytest.raises(InvalidQueryError):
        decode_cursor(encode_cursor(["x"])[:-2] + "@@", 1)
