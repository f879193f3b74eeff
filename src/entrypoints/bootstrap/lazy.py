"""Adapters named by dotted path and imported when first built.

The container names every adapter with `lazy("package.module:Name")`, so a process
imports only the adapters its settings select: the embedded profile never loads Redis,
Celery or pymemcache, and an adapter whose driver is not installed costs nothing until
it is chosen.
"""

from __future__ import annotations

import importlib
from typing import Any


class Lazy:
    """A callable standing for `module:attribute`, imported at its first call."""

    __slots__ = ("_target", "path")

    def __init__(self, path: str) -> None:
        module, _, attribute = path.partition(":")
        if not module or not attribute:
            raise ValueError(f"expected 'package.module:Name', got {path!r}")
        self.path = path
        self._target: Any = None

    def resolve(self) -> Any:
        if self._target is None:
            module, _, attribute = self.path.partition(":")
            self._target = getattr(importlib.import_module(module), attribute)
        return self._target

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"lazy({self.path!r})"


def lazy(path: str) -> Lazy:
    return Lazy(path)
