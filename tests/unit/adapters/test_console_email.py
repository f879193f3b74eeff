"""The console email sender (development): readable output, one block per message."""

from __future__ import annotations

import asyncio
import io

from adapters.system.console_email import ConsoleEmailSender
from core.notifications.model import EmailCategory, EmailMessage


async def test_prints_headers_and_the_text_part_with_its_links() -> None:
    stream = io.StringIO()
    sender = ConsoleEmailSender(stream, sender_address="Portico <no-reply@example.com>")
    await sender.send(
        EmailMessage(
            to="ada@example.com",
            subject="Confirm your email address",
            text="Open https://app.example/verify?token=abc\n",
            html="<p>markup</p>",
            message_id="verify_email:1",
            category=EmailCategory.SECURITY,
        )
    )
    out = stream.getvalue()
    for line in (
        "From: Portico <no-reply@example.com>",
        "To: ada@example.com",
        "Subject: Confirm your email address",
        "Message-ID: verify_email:1",
        "Category: security",
        "Open https://app.example/verify?token=abc",
        "[HTML part: 13 characters, not shown]",
    ):
        assert line in out
    assert "<p>markup</p>" not in out


async def test_concurrent_messages_never_interleave() -> None:
    stream = io.StringIO()
    sender = ConsoleEmailSender(stream)
    texts = [f"message {n}\n" + "x" * 2000 for n in range(20)]
    await asyncio.gather(
        *(sender.send(EmailMessage(to="a@example.com", subject="s", text=t)) for t in texts)
    )
    out = stream.getvalue()
    for text in texts:
        assert text in out
