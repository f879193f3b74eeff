from __future__ import annotations

import json

import pytest
import structlog

from entrypoints.bootstrap.logging import REDACTED, configure_logging


def test_secret_fields_never_reach_the_log(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO")
    structlog.get_logger("t").info(
        "login",
        password="hunter2-hunter2",
        session_token="abc123secret",
        csrf_token="csrf-value",
        password_hash="$argon2id$...",
        user_id=7,
    )
    line = capsys.readouterr().out.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["user_id"] == 7 and record["event"] == "login"
    for key in ("password", "session_token", "csrf_token", "password_hash"):
        assert record[key] == REDACTED
    for secret in ("hunter2", "abc123secret", "csrf-value", "argon2id"):
        assert secret not in line
