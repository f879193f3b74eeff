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


def test_lines_written_while_a_request_is_served_carry_its_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import logging

    from entrypoints.bootstrap.logging import REQUEST_ID

    configure_logging("INFO")
    token = REQUEST_ID.set("req-42")
    try:
        structlog.get_logger("t").info("inside")
        logging.getLogger("core.something").warning("stdlib inside", extra={"n": 1})
    finally:
        REQUEST_ID.reset(token)
    structlog.get_logger("t").info("outside")
    records = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    by_event = {r["event"]: r for r in records}
    assert by_event["inside"]["request_id"] == "req-42"
    assert by_event["stdlib inside"]["request_id"] == "req-42"
    assert by_event["stdlib inside"]["n"] == 1
    assert "request_id" not in by_event["outside"]  # control: none outside a request
