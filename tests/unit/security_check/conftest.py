"""Every security check test starts from a clean environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _no_portico_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The machine's PORTICO_* variables or a `.env` must not leak into these settings."""
    for name in list(os.environ):
        if name.startswith("PORTICO_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
