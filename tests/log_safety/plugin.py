"""The pytest side: every checked test's log output is searched for secrets.

A test is checked when it lives under one of the `checked` directories (the conftest
names tests/integration and tests/unit/http) or carries `@pytest.mark.log_safety`.
From the start of its setup to the end of its teardown, every record from DEBUG up is
made and reaches the capture (other handlers see what they would without it), and
the capture collects what is logged (whatever pytest's own capture does: `-s`, capsys).
A secret of the registry (those made or handed over since the test began), or a
secret-shaped string, in that text fails the test at teardown with what leaked and where.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Sequence
from pathlib import Path

import pytest

from tests.log_safety import sources
from tests.log_safety.capture import LogCapture
from tests.log_safety.leaks import Leak, find_leaks
from tests.log_safety.registry import REGISTRY

MARKER = "log_safety"


class LogSafety:
    """Registered once per test session (per xdist worker): see the module docstring."""

    def __init__(self, checked: Sequence[Path]) -> None:
        self.checked = [path.resolve() for path in checked]
        self.capture = LogCapture()
        self._patches = pytest.MonkeyPatch()
        self._record_patches: pytest.MonkeyPatch | None = None
        self._installed = False

    def pytest_configure(self, config: pytest.Config) -> None:
        config.addinivalue_line(
            "markers",
            f"{MARKER}: search this test's log output for secrets (every test under "
            "tests/integration and tests/unit/http is searched without it)",
        )
        if not self._installed:
            sources.install(self._patches)
            self.capture.install(self._patches)
            self._installed = True

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.capture.uninstall()
        self._patches.undo()
        self._installed = False

    def is_checked(self, item: pytest.Item) -> bool:
        if item.get_closest_marker(MARKER) is not None:
            return True
        path = item.path.resolve()
        return any(path.is_relative_to(directory) for directory in self.checked)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_protocol(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, object, object]:
        # Each test is searched for the secrets of its own run: a value another test made
        # (a fuzzer's "password" such as `conversation_id`) is no secret here, and found
        # in any DDL it would fail tests that leaked nothing.
        REGISTRY.clear()
        if not self.is_checked(item):
            return (yield)
        self._make_every_record()
        self.capture.start()
        try:
            return (yield)
        finally:
            self.capture.stop()
            self._restore_logging()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if call.when == "teardown" and self.capture.active:
            leaks = self.leaks()
            if leaks:
                report.outcome = "failed"
                report.longrepr = _describe(leaks)
        return report

    def leaks(self) -> list[Leak]:
        """What leaked into this test's log output."""
        return find_leaks(self.capture.text(), REGISTRY)

    def _make_every_record(self) -> None:
        """Every record is made, from DEBUG up, as if the root logger were at DEBUG; the
        capture sees them all, and every other handler only what it would without this.

        Levels themselves are left alone (a runtime configuring its logging, caplog
        saving and restoring them work as ever): `isEnabledFor` answers as if the root
        were at DEBUG (a logger given a level of its own, such as SQLAlchemy's, keeps
        it), and records below the real effective level reach the capture only.
        """
        root = logging.getLogger()
        capture_handler = self.capture.handler
        call_handlers = logging.Logger.callHandlers

        def level_of(logger: logging.Logger, root_level: int) -> int:
            node: logging.Logger | None = logger
            while node is not None and node is not root:
                if node.level:
                    return node.level
                node = node.parent
            return root_level

        def is_enabled_for(logger: logging.Logger, level: int) -> bool:
            return logger.manager.disable < level and level >= level_of(logger, logging.DEBUG)

        def handlers_as_configured(logger: logging.Logger, record: logging.LogRecord) -> None:
            if record.levelno >= level_of(logger, root.level):
                call_handlers(logger, record)
            elif record.levelno >= capture_handler.level:
                capture_handler.handle(record)

        self._record_patches = pytest.MonkeyPatch()
        self._record_patches.setattr(logging.Logger, "isEnabledFor", is_enabled_for)
        self._record_patches.setattr(logging.Logger, "callHandlers", handlers_as_configured)

    def _restore_logging(self) -> None:
        if self._record_patches is not None:
            self._record_patches.undo()
            self._record_patches = None


def _describe(leaks: list[Leak]) -> str:
    lines = [f"secrets in this test's log output ({len(leaks)}):"]
    lines += [f"  - {leak}" for leak in leaks[:20]]
    if len(leaks) > 20:
        lines.append(f"  ... and {len(leaks) - 20} more")
    return "\n".join(lines)
