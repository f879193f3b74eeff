"""What notifications need from the outside world: a way to send mail, and storage for
each user's preferences."""

from __future__ import annotations

from abc import abstractmethod
from typing import Protocol

from core.notifications.model import EmailMessage, NotificationPreferences
from core.shared.unit_of_work import UnitOfWork


class EmailSender(Protocol):
    """Hands one email to a mail transport.

    Contract:
    - `send` returns once the transport has accepted the message (for SMTP: the server
      answered 250 to DATA). It is not idempotent: two calls deliver two mails; the
      `message_id` (a stable Message-ID header) lets receivers recognise a repeat.
    - The message is sent as `text`, or as multipart/alternative text + HTML when `html`
      is set, UTF-8 throughout.
    - Transient failures (cannot connect, timeout, connection dropped, a 4xx answer,
      bad credentials or TLS setup, which are the deployment's fault, not the
      message's) raise `UnavailableError(dependency="email")`: the same message may
      succeed later.
    - A permanent refusal of this message (a 5xx answer to its sender, recipients or
      content) raises `EmailRejectedError` (a `RuleViolationError`): retrying the same
      message cannot succeed.
    - Every network operation has a timeout; `send` never blocks the event loop.
    """

    @abstractmethod
    async def send(self, message: EmailMessage) -> None: ...


class NotificationPreferencesRepository(Protocol):
    """Stores each user's notification preferences. Used inside a
    `NotificationsUnitOfWork`; nothing is durable before commit.

    Contract:
    - `get` returns the stored preferences, or the defaults
      (`NotificationPreferences(user_id)`) when none are stored; it never fails for an
      unknown user.
    - `save` inserts or replaces the user's preferences (one row per user, whoever
      saves first; concurrent saves never raise a conflict, the last commit wins) and
      returns what is stored. It raises `UserNotFoundError` when the user does not exist.
    Driver failures raise `UnavailableError`.
    """

    @abstractmethod
    async def get(self, user_id: int) -> NotificationPreferences: ...

    @abstractmethod
    async def save(self, preferences: NotificationPreferences) -> NotificationPreferences: ...


class NotificationsUnitOfWork(UnitOfWork, Protocol):
    """A transaction that can reach the notification repositories."""

    notification_preferences: NotificationPreferencesRepository


class NotificationsUnitOfWorkFactory(Protocol):
    """Opens a new `NotificationsUnitOfWork` per call (`read_only` as for identity: a
    promise not to write, which lets SQLite skip its write lock)."""

    @abstractmethod
    def __call__(self, *, read_only: bool = False) -> NotificationsUnitOfWork: ...
