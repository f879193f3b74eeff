"""Templated mail end to end through the composition root: `queue_email` in a business
transaction, the inline job runner, `NotificationService.handle_send_email`, the
in-memory sender. On the memory and the SQLite (embedded) profiles."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from adapters.memory.email import InMemoryEmailSender
from adapters.smtp.sender import SmtpEmailSender
from adapters.system.console_email import ConsoleEmailSender
from core.identity.model import User
from core.identity.service import AccountService
from core.notifications.model import EmailCategory
from core.notifications.service import NotificationService, queue_email
from core.notifications.templates import PASSWORD_CHANGED
from entrypoints.bootstrap.container import build_container
from entrypoints.bootstrap.runtime import Runtime, start_runtime
from entrypoints.bootstrap.settings import Settings

CHEAP_HASHING = {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "allow_weak_hashing": True}


@pytest.fixture(params=["memory", "embedded"])
async def app(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Runtime, InMemoryEmailSender]]:
    database: dict[str, Any] = (
        {"backend": "memory"}
        if request.param == "memory"
        else {"url": f"sqlite+aiosqlite:///{tmp_path / 'p.db'}", "auto_create": True}
    )
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        env="test",
        secret_key="k" * 48,
        passwords=CHEAP_HASHING,  # type: ignore[arg-type]
        database=database,  # type: ignore[arg-type]
        email={"backend": "memory"},  # type: ignore[arg-type]
    )
    container = build_container(settings)
    runtime = await start_runtime(settings, container)
    try:
        sender = container.email_sender()
        assert isinstance(sender, InMemoryEmailSender)
        yield runtime, sender
    finally:
        await runtime.aclose()


async def _user(runtime: Runtime, sender: InMemoryEmailSender, name: str = "ada") -> User:
    """A registered user, with the mail registration itself sends already out of the way."""
    user = await runtime.get(AccountService).register(
        f"{name}@example.com", name, "correct horse battery"
    )
    await runtime.drain_jobs()
    sender.clear()
    return user


async def _queue(
    runtime: Runtime, user: User, category: EmailCategory, *, commit: bool = True
) -> None:
    async with runtime.get(AccountService)._uow() as tx:
        await queue_email(
            tx.jobs,
            user_id=user.id,
            to=str(user.email),
            template=PASSWORD_CHANGED,
            context={"username": str(user.username)},
            category=category,
            idempotency_key=f"test-mail:{user.id}",
        )
        if commit:
            await tx.commit()


async def test_a_committed_email_job_is_sent_once(
    app: tuple[Runtime, InMemoryEmailSender],
) -> None:
    runtime, sender = app
    user = await _user(runtime, sender)
    await _queue(runtime, user, EmailCategory.SECURITY)
    await _queue(runtime, user, EmailCategory.SECURITY)  # same key: one job
    await runtime.drain_jobs()
    (mail,) = sender.outbox
    assert mail.to == "ada@example.com" and mail.subject == "Your Portico password was changed"
    assert mail.message_id == f"test-mail:{user.id}" and mail.html is not None


async def test_a_rolled_back_email_job_never_runs(
    app: tuple[Runtime, InMemoryEmailSender],
) -> None:
    runtime, sender = app
    user = await _user(runtime, sender)
    await _queue(runtime, user, EmailCategory.SECURITY, commit=False)
    await runtime.drain_jobs()
    assert sender.outbox == []


async def test_queued_non_essential_mail_respects_the_preferences(
    app: tuple[Runtime, InMemoryEmailSender],
) -> None:
    runtime, sender = app
    user = await _user(runtime, sender, "bob")
    assert user.id is not None
    # (That the job reads them when it runs, not when queued, is a unit test of the
    # handler: here the inline runner may pick the job up at any await.)
    await runtime.get(NotificationService).update_preferences(user.id, usage_alerts=False)
    await _queue(runtime, user, EmailCategory.USAGE_ALERTS)
    await runtime.drain_jobs()
    assert sender.outbox == []


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        ({}, ConsoleEmailSender),
        ({"backend": "memory"}, InMemoryEmailSender),
        ({"backend": "smtp"}, SmtpEmailSender),
    ],
)
def test_the_email_backend_is_chosen_by_settings(email: dict[str, str], expected: type) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        secret_key="k" * 48,
        email=email,  # type: ignore[arg-type]
        smtp={"host": "mail.example", "port": 587, "starttls": True, "password": "pw"},  # type: ignore[arg-type]
    )
    assert isinstance(build_container(settings).email_sender(), expected)


def test_smtp_settings_refuse_two_tls_modes() -> None:
    with pytest.raises(ValidationError, match="not both"):
        Settings(_env_file=None, smtp={"starttls": True, "use_tls": True})  # type: ignore[call-arg, arg-type]
