"""An email sender that keeps mail in a list (tests, and the `memory` email backend)."""

from __future__ import annotations

from core.notifications.model import EmailMessage
from core.notifications.ports import EmailSender


class InMemoryEmailSender(EmailSender):
    """`EmailSender` that appends every accepted message to `outbox`.

    Contract (from `EmailSender`): `send` accepts any message and never blocks. Tests
    can make the next sends fail with `fail_next(error, times)`: each failing call raises
    `error` (an `UnavailableError` or `EmailRejectedError`, as a real transport would)
    and keeps nothing, exactly like a refused delivery.
    """

    def __init__(self) -> None:
        self.outbox: list[EmailMessage] = []
        self._failures: list[Exception] = []

    def fail_next(self, error: Exception, times: int = 1) -> None:
        self._failures.extend([error] * times)

    async def send(self, message: EmailMessage) -> None:
        if self._failures:
            raise self._failures.pop(0)
        self.outbox.append(message)

    def sent_to(self, address: str) -> list[EmailMessage]:
        return [message for message in self.outbox if message.to == address]

    def clear(self) -> None:
        self.outbox.clear()
        self._failures.clear()
