"""An email sender that prints mail to stderr, for local development.

It prints everything, verification and password-reset links included: those links carry
live tokens, and anyone who can read the process's output can use them. So it is the
development default only; the production security check must refuse
`PORTICO_EMAIL__BACKEND=console`.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import TextIO

from core.notifications.model import EmailMessage
from core.notifications.ports import EmailSender

_RULE = "-" * 72


def format_email(message: EmailMessage, sender_address: str) -> str:
    """The message as a readable block: headers and the text part (the HTML part says
    the same, and would bury the links in markup; its size is noted)."""
    lines = [
        _RULE,
        f"From: {sender_address}",
        f"To: {message.to}",
        f"Subject: {message.subject}",
    ]
    if message.message_id:
        lines.append(f"Message-ID: {message.message_id}")
    if message.category is not None:
        lines.append(f"Category: {message.category.value}")
    lines += ["", message.text.rstrip("\n")]
    if message.html is not None:
        lines += ["", f"[HTML part: {len(message.html)} characters, not shown]"]
    lines += [_RULE, ""]
    return "\n".join(lines)


class ConsoleEmailSender(EmailSender):
    """`EmailSender` that writes each message to `stream` (stderr by default).

    Contract (from `EmailSender`): never fails for transport reasons. The write runs in
    a worker thread (a full pipe must not stall the event loop) and under a lock, so
    concurrent messages never interleave. Not for production: see the module docstring.
    """

    def __init__(
        self, stream: TextIO | None = None, *, sender_address: str = "Portico <no-reply@localhost>"
    ) -> None:
        self._stream = stream
        self._sender_address = sender_address
        self._lock = threading.Lock()

    def _write(self, text: str) -> None:
        # Looked up at write time, so test runners that swap sys.stderr see the output.
        stream = self._stream or sys.stderr
        with self._lock:
            stream.write(text)
            stream.flush()

    async def send(self, message: EmailMessage) -> None:
        await asyncio.to_thread(self._write, format_email(message, self._sender_address))
