"""Collecting all the log output of the process, and of the processes it starts.

The app logs through four paths, each captured here whatever pytest's own capture does
(`-s`, `capsys`):

- the standard library's `logging`: a handler on the root logger renders every record
  (any logger, from DEBUG up) with what production writes of it (message, `extra`
  fields, traceback), key-based redaction included; left out are the records of HTTP
  clients the test itself drives (its browser) and of servers only the tests run;
- structlog: what its sinks write (the app's stdout logger and structlog's own);
- the access log, which writes its batches to stdout itself;
- subprocesses: files their output goes to (Celery workers and beat log to files under
  the test's tmp dir), and what `communicate` (so `subprocess.run`) returns.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

import pytest
import structlog

from entrypoints.bootstrap.logging import redact_secrets

_REPO = Path(__file__).resolve().parents[2]
_SRC, _TESTS, _HERE = (
    f"{_REPO / 'src'}{os.sep}",
    f"{_REPO / 'tests'}{os.sep}",
    f"{Path(__file__).parent}{os.sep}",
)
# HTTP client libraries: their records describe requests, which are the app's when app
# code sent them and the test's own (its browser following the app's redirects, OAuth
# `code` and `state` in the URLs) when test code did.
_CLIENT_LOGGERS = frozenset({"httpx", "httpx2", "httpcore"})
# Servers only the tests run: aiosmtpd (a dev dependency), the mail tests' SMTP server,
# logs the mails it receives at DEBUG; the app only sends mail.
_HARNESS_LOGGERS = frozenset({"mail.log"})

# structlog's sink methods: one function under several names on each logger class.
_SINK_METHODS = (
    "msg",
    "log",
    "debug",
    "info",
    "warn",
    "warning",
    "error",
    "err",
    "critical",
    "exception",
    "fatal",
    "failure",
)


class LogCapture:
    """What was logged since `start()`, while `active`. Thread-safe."""

    def __init__(self) -> None:
        self.active = False
        self._parts: list[str] = []
        self._files: dict[Path, int] = {}  # watched file -> bytes already read
        self._lock = threading.Lock()
        self.handler = _RecordHandler(self)

    def start(self) -> None:
        with self._lock:
            self._parts.clear()
        self.active = True

    def stop(self) -> None:
        self.active = False

    def write(self, text: str | bytes) -> None:
        if not self.active:
            return
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        with self._lock:
            self._parts.append(text)

    def watch(self, path: Path) -> None:
        """Read `path` (a subprocess's log) with the rest: what it gains from now on."""
        with self._lock:
            self._files.setdefault(path, 0)

    def text(self) -> str:
        """Everything captured so far, and what watched files gained since last read."""
        with self._lock:
            for path, offset in list(self._files.items()):
                try:
                    with path.open("rb") as log:
                        log.seek(offset)
                        gained = log.read()
                except FileNotFoundError:  # its tmp dir is gone: nothing more comes
                    del self._files[path]
                    continue
                self._files[path] = offset + len(gained)
                self._parts.append(gained.decode("utf-8", "replace"))
            return "\n".join(self._parts)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        logging.getLogger().addHandler(self.handler)
        self._structlog_sinks(monkeypatch)
        self._access_log(monkeypatch)
        self._subprocesses(monkeypatch)

    def uninstall(self) -> None:
        logging.getLogger().removeHandler(self.handler)

    def _structlog_sinks(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from entrypoints.bootstrap import logging as app_logging

        sinks = (
            app_logging._StdoutBytesLogger,
            structlog.PrintLogger,
            structlog.WriteLogger,
            structlog.BytesLogger,
        )
        for cls in sinks:
            for name in _SINK_METHODS:
                original = getattr(cls, name, None)
                if original is None:
                    continue

                def sink(logger: Any, message: Any, _original: Any = original) -> Any:
                    self.write(message)
                    return _original(logger, message)

                monkeypatch.setattr(cls, name, sink)

    def _access_log(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from entrypoints.http.access_log import AccessLog

        original = AccessLog.flush

        def flush(access_log: AccessLog) -> None:
            self.write(bytes(access_log._pending))
            original(access_log)

        monkeypatch.setattr(AccessLog, "flush", flush)

    def _subprocesses(self, monkeypatch: pytest.MonkeyPatch) -> None:
        init, communicate = subprocess.Popen.__init__, subprocess.Popen.communicate

        def popen_init(process: Any, *args: Any, **kwargs: Any) -> None:
            init(process, *args, **kwargs)
            for stream in (kwargs.get("stdout"), kwargs.get("stderr")):
                name = getattr(stream, "name", None)
                if isinstance(name, str) and os.path.isfile(name):
                    self.watch(Path(name))

        def popen_communicate(process: Any, *args: Any, **kwargs: Any) -> Any:
            output = communicate(process, *args, **kwargs)
            for stream in output:
                if stream:
                    self.write(stream)
            return output

        monkeypatch.setattr(subprocess.Popen, "__init__", popen_init)
        monkeypatch.setattr(subprocess.Popen, "communicate", popen_communicate)


class _RecordHandler(logging.Handler):
    """Renders every record like the app's stdlib logging does (message, `extra` fields
    redacted by the app's own key rule, traceback) into a `LogCapture`, cheaply: a
    record only needs to be searched, not to be JSON."""

    def __init__(self, capture: LogCapture) -> None:
        super().__init__(logging.DEBUG)
        self._capture = capture

    def emit(self, record: logging.LogRecord) -> None:
        if not self._capture.active or record.name in _HARNESS_LOGGERS:
            return
        if record.name.partition(".")[0] in _CLIENT_LOGGERS and _sent_by_a_test():
            return
        try:
            self._capture.write(_render(record))
        except Exception:  # like any handler: a bad record must not break the caller
            self.handleError(record)


def _render(record: logging.LogRecord) -> str:
    extra = {key: value for key, value in vars(record).items() if key not in _RECORD_FIELDS}
    redact_secrets(None, record.levelname, extra)
    parts = [record.levelname, record.name, record.getMessage()]
    parts += [f"{key}={value}" for key, value in extra.items()]
    if record.exc_info and record.exc_info[0] is not None:
        parts.append("".join(traceback.format_exception(*record.exc_info)))
    if record.stack_info:
        parts.append(record.stack_info)
    return " ".join(parts)


# Attributes every LogRecord has; the others came from `extra`.
_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def _sent_by_a_test() -> bool:
    """True when the innermost frame of this repository on the stack is a test's (not
    the app's, nor this check's own wrappers)."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith(_SRC):
            return False
        if name.startswith(_TESTS) and not name.startswith(_HERE):
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False
