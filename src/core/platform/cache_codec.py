"""How every cache adapter checks its input and lays an entry out as bytes.

One codec for all adapters, so they accept and refuse exactly the same keys and values
(the contract suite relies on it) and count the same bytes against the size limit.

Layout of a stored entry:
- untagged: the value's JSON text, as is. A counter is therefore plain decimal digits,
  which is also what Redis INCRBY and Memcached incr read and write, so `set(k, 5)`
  followed by `incr(k)` works everywhere.
- tagged: `~` + a JSON object `{tag: version}` + newline + the value's JSON text. JSON
  text never starts with `~`, and `json.dumps` escapes newlines inside strings, so both
  layouts are unambiguous. An entry is current while every tag's stored version still
  equals the version recorded in it.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from core.platform.cache import (
    MAX_DEPTH,
    MAX_INCREMENT,
    MAX_KEY_BYTES,
    MAX_TAG_BYTES,
    MAX_TAGS,
    MAX_TTL_SECONDS,
    MAX_VALUE_BYTES,
    CacheValueTooLargeError,
    JsonInput,
    JsonValue,
)

TAGGED = b"~"
_SEPARATOR = b"\n"


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """A decoded entry: its value and the tag versions it was written under."""

    value: JsonValue
    tag_versions: dict[str, str] = field(default_factory=dict)

    def is_current(self, versions: Mapping[str, str | None]) -> bool:
        """True while each tag's current version (None: no version) matches the entry's."""
        return all(versions.get(tag) == v for tag, v in self.tag_versions.items())


def check_key(key: object, *, max_bytes: int = MAX_KEY_BYTES, what: str = "key") -> str:
    """Return `key` if it is a non-empty str of at most `max_bytes` UTF-8 bytes."""
    if not isinstance(key, str) or not key:
        raise ValueError(f"a cache {what} must be a non-empty string")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError as exc:  # lone surrogates
        raise ValueError(f"a cache {what} must be valid Unicode") from exc
    if size > max_bytes:
        raise ValueError(f"a cache {what} must be at most {max_bytes} bytes")
    return key


def check_keys(keys: Iterable[str]) -> list[str]:
    # A bare string is iterable too; taking it as a list of one-letter keys is a bug.
    if isinstance(keys, str | bytes):
        raise ValueError("get_many takes a collection of keys, not one string")
    return [check_key(key) for key in keys]


def check_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Validated tags, duplicates removed, first-seen order kept."""
    if isinstance(tags, str | bytes):
        raise ValueError("tags must be a collection of strings, not one string")
    unique = tuple(dict.fromkeys(check_key(t, max_bytes=MAX_TAG_BYTES, what="tag") for t in tags))
    if len(unique) > MAX_TAGS:
        raise ValueError(f"an entry carries at most {MAX_TAGS} tags")
    return unique


def check_ttl(ttl_seconds: object) -> int:
    if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int):
        raise ValueError("ttl_seconds must be an int")
    if not 1 <= ttl_seconds <= MAX_TTL_SECONDS:
        raise ValueError(f"ttl_seconds must be between 1 and {MAX_TTL_SECONDS}")
    return ttl_seconds


def check_amount(amount: object) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValueError("amount must be an int")
    if not 1 <= amount <= MAX_INCREMENT:
        raise ValueError(f"amount must be between 1 and {MAX_INCREMENT}")
    return amount


def encode_value(value: JsonInput) -> bytes:
    """The compact UTF-8 JSON text of `value`, or ValueError (see the `Cache` contract)."""
    _check_shape(value)
    try:
        text = json.dumps(
            value,
            ensure_ascii=False,
            allow_nan=False,
            separators=(",", ":"),
            default=_mapping_as_dict,
        )
        payload = text.encode("utf-8")
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise ValueError(f"the value cannot be cached as JSON: {exc}") from exc
    if len(payload) > MAX_VALUE_BYTES:
        raise CacheValueTooLargeError(
            f"the value's JSON is {len(payload)} bytes; the limit is {MAX_VALUE_BYTES}"
        )
    return payload


def decode_value(payload: bytes) -> JsonValue:
    """Inverse of `encode_value` (raises ValueError on text that is not strict JSON)."""
    result: JsonValue = json.loads(payload, parse_constant=_refuse_constant)
    return result


def encode_entry(payload: bytes, tag_versions: Mapping[str, str]) -> bytes:
    """The stored bytes for an encoded value written under `tag_versions`."""
    if not tag_versions:
        return payload
    header = json.dumps(dict(tag_versions), ensure_ascii=False, separators=(",", ":"))
    return TAGGED + header.encode("utf-8") + _SEPARATOR + payload


def decode_entry(raw: bytes) -> StoredEntry | None:
    """The entry stored as `raw`, or None when the bytes are not an entry of ours.

    Adapters treat None as a miss: a cache that cannot read an entry has no entry.
    """
    try:
        if not raw.startswith(TAGGED):
            return StoredEntry(decode_value(raw))
        header, separator, payload = raw[len(TAGGED) :].partition(_SEPARATOR)
        versions = json.loads(header) if separator else None
        if not isinstance(versions, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in versions.items()
        ):
            return None
        return StoredEntry(decode_value(payload), versions)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None


def parse_counter(raw: bytes) -> int | None:
    """The counter `raw` holds (plain decimal digits), or None if it holds something else."""
    digits = raw.strip(b" ")  # Memcached may pad a counter with spaces after a decrement
    if not digits or len(digits) > 20 or not digits.isdigit():
        return None
    return int(digits)


def new_tag_version() -> str:
    """A fresh version for a tag: random, so a tag that was dropped and re-created (by an
    invalidation, an expiry or an eviction) never matches a version stamped earlier."""
    return secrets.token_hex(16)


def _check_shape(value: object) -> None:
    # Iterative and bounded: deep nesting raises ValueError instead of RecursionError, a
    # cycle hits the depth limit, and a small structure that shares one big list many
    # times hits the node budget (each node is at least one byte of JSON) quickly.
    stack: list[tuple[object, int]] = [(value, 0)]
    budget = MAX_VALUE_BYTES
    while stack:
        item, depth = stack.pop()
        budget -= 1
        if budget < 0:
            raise CacheValueTooLargeError(f"the value's JSON would exceed {MAX_VALUE_BYTES} bytes")
        if item is None or isinstance(item, bool | int | str):
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError("NaN and infinite floats are not JSON")
            continue
        if depth >= MAX_DEPTH:
            raise ValueError(f"the value nests deeper than {MAX_DEPTH} levels")
        if isinstance(item, Mapping):
            for name, member in item.items():
                if not isinstance(name, str):
                    # json.dumps would quietly turn 1 into "1": refuse instead.
                    raise ValueError("JSON object keys must be strings")
                stack.append((member, depth + 1))
        elif isinstance(item, list | tuple):
            stack.extend((member, depth + 1) for member in item)
        else:
            raise ValueError(f"a {type(item).__name__} is not a JSON value")


def _mapping_as_dict(value: object) -> object:
    # json.dumps handles dict only; other Mappings (MappingProxyType, ...) were already
    # checked by _check_shape and are encoded as objects.
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"a {type(value).__name__} is not a JSON value")


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")
