"""Statements built once per dialect, for the hot paths.

Building a statement with its values, and walking it for SQLAlchemy's compiled-cache
key, costs about 0.7 ms of CPU for a wide INSERT ... RETURNING; a statement built once
with bound parameters has its key memoized on it, so executing it again with new
parameters skips both. A send runs about a dozen such statements.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

StatementT = TypeVar("StatementT")


class PerDialect(Generic[StatementT]):
    """`build(dialect)` once per dialect name (`session.get_bind().dialect.name`)."""

    def __init__(self, build: Callable[[str], StatementT]) -> None:
        self._build = build
        self._built: dict[str, StatementT] = {}

    def __call__(self, dialect: str) -> StatementT:
        statement = self._built.get(dialect)
        if statement is None:
            statement = self._built[dialect] = self._build(dialect)
        return statement
