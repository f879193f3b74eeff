"""The verification and reset flows deliver real mail to a real SMTP server (aiosmtpd).

The flows run end to end through the runtime: service call -> outbox job -> in-process
runner -> SmtpEmailSender -> the server this test starts; the token read from the
received mail then completes each flow.
"""

from __future__ import annotations

import email
import re
from collections.abc import Iterator
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from core.identity.service import (
    AccountService,
    AuthenticationService,
    EmailVerificationService,
    PasswordResetService,
)
from entrypoints.bootstrap.runtime import start_runtime
from entrypoints.bootstrap.settings import Settings
from tests.private_servers import free_port

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"
LINK = "{path}\\?token=([A-Za-z0-9_\\-]{{40,}})"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def token_in(self, path: str) -> str:
        """The token of the newest mail linking to `path` (the front end's page)."""
        pattern = re.compile(LINK.format(path=re.escape(path)))
        for message in reversed(self.messages):
            for part in message.walk():
                if part.get_content_type() == "text/plain":
                    found = pattern.search(part.get_payload(decode=True).decode())
                    if found:
                        return found.group(1)
        raise AssertionError(f"no mail links to {path!r} with a token")


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


async def test_verification_and_reset_mails_arrive_over_smtp_and_work(
    inbox: tuple[Inbox, int],
) -> None:
    server, port = inbox
    settings = Settings(
        secret_key="k" * 48,
        database={"backend": "memory"},
        email={"backend": "smtp"},
        smtp={"host": "127.0.0.1", "port": port, "timeout_seconds": 5},
        passwords={"argon2_time_cost": 1, "argon2_memory_kib": 1024, "allow_weak_hashing": True},
    )  # type: ignore[arg-type]
    runtime = await start_runtime(settings)
    try:
        user = await runtime.get(AccountService).register("ada@example.com", "ada", PASSWORD)
        assert user.id is not None
        await runtime.drain_jobs()
        assert any("ada@example.com" in str(m["To"]) for m in server.messages)  # welcome

        await runtime.get(EmailVerificationService).request_email_verification(user.id)
        await runtime.drain_jobs()
        verified = await runtime.get(EmailVerificationService).confirm_email(
            server.token_in("/verify-email")
        )
        assert verified.email_verified

        await runtime.get(PasswordResetService).request_password_reset("ada@example.com")
        await runtime.drain_jobs()
        await runtime.get(PasswordResetService).reset_password(
            server.token_in("/reset-password"), "a brand new passphrase"
        )
        login = await runtime.get(AuthenticationService).login(
            "ada@example.com", "a brand new passphrase"
        )
        assert login.user.id == user.id
    finally:
        await runtime.aclose()
