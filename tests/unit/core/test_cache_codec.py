"""The byte layout every cache adapter stores, and how it reads bytes it did not write."""

from __future__ import annotations

import pytest

from core.platform.cache_codec import (
    StoredEntry,
    decode_entry,
    encode_entry,
    encode_value,
    new_tag_version,
    parse_counter,
)


def test_untagged_entries_are_plain_json_so_counters_are_plain_digits() -> None:
    assert encode_entry(encode_value({"a": [1, "é"]}), {}) == '{"a":[1,"é"]}'.encode()
    assert encode_entry(encode_value(42), {}) == b"42"
    assert decode_entry(b"42") == StoredEntry(42)


def test_tagged_entries_round_trip_with_their_versions() -> None:
    raw = encode_entry(encode_value("line\nbreak"), {"user:1": "v1", "a\nb": "v2"})
    assert raw.startswith(b"~")
    assert decode_entry(raw) == StoredEntry("line\nbreak", {"user:1": "v1", "a\nb": "v2"})


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"NaN",
        b"[1, Infinity]",
        b"~",
        b"~{}",
        b"~[1]\n2",
        b'~{"t":1}\n2',
        b'~{"t":"v"}\nnot json',
    ],
)
def test_bytes_that_are_not_an_entry_read_as_nothing(raw: bytes) -> None:
    assert decode_entry(raw) is None


def test_is_current_needs_every_tag_at_its_recorded_version() -> None:
    entry = StoredEntry("v", {"a": "1", "b": "2"})
    assert entry.is_current({"a": "1", "b": "2", "c": "9"})
    assert not entry.is_current({"a": "1", "b": "3"})
    assert not entry.is_current({"a": "1", "b": None})
    assert not entry.is_current({"a": "1"})
    assert StoredEntry("untagged").is_current({})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"0", 0),
        (b"17", 17),
        (b"17   ", 17),
        (b"-1", None),
        (b"1.5", None),
        (b'"7"', None),
        (b"", None),
        (b"1" * 21, None),
    ],
)
def test_parse_counter(raw: bytes, expected: int | None) -> None:
    assert parse_counter(raw) == expected


def test_tag_versions_are_random() -> None:
    assert len({new_tag_version() for _ in range(100)}) == 100
