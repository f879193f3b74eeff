"""Notification rules: templates, preferences, delivery and the send-email job, with every
port in memory (no sockets, no sleeps)."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from string import Template
from typing import Any

import pytest

from adapters.memory.email import InMemoryEmailSender
from adapters.memory.unit_of_work import InMemoryUnitOfWorkFactory
from core.identity.errors import UserNotFoundError
from core.identity.model import Email, User, Username
from core.notifications.errors import (
    EmailRejectedError,
    InvalidPreferenceError,
    MissingContextError,
    UnknownTemplateError,
)
from core.notifications.model import (
    PREFERENCE_FLAGS,
    EmailCategory,
    EmailMessage,
    NotificationPreferences,
)
from core.notifications.service import (
    SEND_EMAIL_JOB,
    NotificationService,
    queue_email,
)
from core.notifications.templates import (
    PASSWORD_CHANGED,
    PASSWORD_RESET,
    PAYMENT_FAILED,
    PAYMENT_RECEIPT,
    VERIFY_EMAIL,
    WELCOME,
    EmailTemplate,
    TemplateLibrary,
    packaged_templates,
)
from core.platform.jobs import Job, JobPayload, PermanentJobError
from core.shared.errors import UnavailableError

# The keys other contexts pass; a template needing more would break their flows.
TEMPLATE_KEYS = {
    WELCOME: {"username"},
    VERIFY_EMAIL: {"username", "link", "expires_minutes"},
    PASSWORD_RESET: {"username", "link", "expires_minutes"},
    PASSWORD_CHANGED: {"username"},
    PAYMENT_RECEIPT: {"username", "amount", "description", "link"},
    PAYMENT_FAILED: {"username", "amount", "description", "link"},
}
SAMPLE = {
    "username": "ada",
    "link": "https://app.example/x?token=t0k&y=1",
    "expires_minutes": "30",
    "amount": "5.00 USD",
    "description": "1,000 credits",
}
NASTY = "<script>alert(\"x\")</script> & 'quoted'"


# --- templates ----------------------------------------------------------------------------


def test_the_packaged_templates_and_their_context_keys() -> None:
    library = packaged_templates()
    assert library.names == set(TEMPLATE_KEYS)
    for name, keys in TEMPLATE_KEYS.items():
        assert library.get(name).keys == keys, name


@pytest.mark.parametrize("name", sorted(TEMPLATE_KEYS))
def test_every_packaged_template_renders_all_three_parts(name: str) -> None:
    context = {key: SAMPLE[key] for key in TEMPLATE_KEYS[name]}
    rendered = packaged_templates().render(name, context)
    assert rendered.subject and "\n" not in rendered.subject and "$" not in rendered.subject
    assert "ada" in rendered.text and "$" not in rendered.text
    assert rendered.html.lstrip().startswith("<!DOCTYPE html>") and "$" not in rendered.html
    if "link" in context:
        assert SAMPLE["link"] in rendered.text
        # In HTML the link is escaped, so `&` reads `&amp;` (also inside href="...").
        assert 'href="https://app.example/x?token=t0k&amp;y=1"' in rendered.html
    if "expires_minutes" in context:
        assert "30 minutes" in rendered.text
    if "amount" in context:
        assert "5.00 USD" in rendered.subject and "5.00 USD" in rendered.text
        assert "1,000 credits" in rendered.html


def test_html_escapes_every_value_and_text_keeps_it_as_is() -> None:
    rendered = packaged_templates().render(
        VERIFY_EMAIL,
        {"username": NASTY, "link": 'https://x/"onmouseover="evil', "expires_minutes": 5},
    )
    assert NASTY in rendered.text
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;quoted&#x27;" in (
        rendered.html
    )
    # A quote in a value cannot break out of the attribute it lands in.
    assert 'href="https://x/&quot;onmouseover=&quot;evil"' in rendered.html
    assert "5 minutes" in rendered.text  # non-string values (job payloads) are rendered


def test_a_value_with_line_breaks_cannot_add_a_header_through_the_subject() -> None:
    rendered = packaged_templates().render(WELCOME, {"username": "ada\r\nBcc: all@example.com"})
    assert "\r" not in rendered.subject and "\n" not in rendered.subject
    assert rendered.subject == "Welcome to Portico, ada Bcc: all@example.com"
    EmailMessage(to="ada@example.com", subject=rendered.subject, text=rendered.text)


def test_missing_context_keys_are_named() -> None:
    with pytest.raises(MissingContextError) as caught:
        packaged_templates().render(PASSWORD_RESET, {"username": "ada"})
    assert caught.value.missing == ["expires_minutes", "link"]
    assert "expires_minutes, link" in str(caught.value)
    # None is not a value.
    with pytest.raises(MissingContextError):
        packaged_templates().render(WELCOME, {"username": None})
    # Extra keys are ignored.
    packaged_templates().render(WELCOME, {"username": "ada", "unused": "x"})


def test_unknown_templates_are_refused() -> None:
    with pytest.raises(UnknownTemplateError, match="nope"):
        packaged_templates().render("nope", {})
    with pytest.raises(UnknownTemplateError):
        packaged_templates().check("../welcome", {"username": "ada"})


def test_a_template_with_a_broken_placeholder_is_refused_when_loaded() -> None:
    with pytest.raises(ValueError, match="bad placeholder"):
        EmailTemplate("broken", Template("Hi"), Template("costs $5"), Template("<p>x</p>"))
    ok = EmailTemplate("price", Template("Hi"), Template("costs $$5 for $who"), Template("$who"))
    assert ok.render({"who": "you"}).text == "costs $5 for you"


def test_a_template_directory_needs_all_three_parts(tmp_path: Path) -> None:
    (tmp_path / "hello.subject.txt").write_text("Hello $name\n", encoding="utf-8")
    (tmp_path / "hello.txt").write_text("Hi $name", encoding="utf-8")
    with pytest.raises(ValueError, match=r"hello\.html"):
        TemplateLibrary.from_directory(tmp_path)
    (tmp_path / "hello.html").write_text("<p>Hi $name</p>", encoding="utf-8")
    library = TemplateLibrary.from_directory(tmp_path)
    assert library.render("hello", {"name": "Zoë"}).subject == "Hello Zoë"


# --- model --------------------------------------------------------------------------------


def test_email_messages_refuse_line_breaks_in_headers() -> None:
    for field_name in ("to", "subject", "message_id"):
        values: dict[str, Any] = {"to": "a@example.com", "subject": "s", "text": "t"}
        values[field_name] = "x\r\nBcc: b@example.com"
        with pytest.raises(ValueError, match="single line"):
            EmailMessage(**values)
    with pytest.raises(ValueError, match="recipient"):
        EmailMessage(to=" ", subject="s", text="t")


def test_preference_flags_are_the_non_essential_categories() -> None:
    assert set(PREFERENCE_FLAGS) == {c.value for c in EmailCategory if not c.essential}
    assert {f.name for f in fields(NotificationPreferences)} == {"user_id", *PREFERENCE_FLAGS}
    assert [c for c in EmailCategory if c.essential] == [
        EmailCategory.SECURITY,
        EmailCategory.BILLING,
    ]


def test_default_preferences_and_allows() -> None:
    defaults = NotificationPreferences(1)
    assert defaults.flags() == {
        "onboarding": True,
        "product_updates": True,
        "usage_alerts": True,
        "marketing": False,
    }
    assert not defaults.allows(EmailCategory.MARKETING)
    nothing = NotificationPreferences(1).with_flags(**dict.fromkeys(PREFERENCE_FLAGS, False))
    assert [c for c in EmailCategory if nothing.allows(c)] == [
        EmailCategory.SECURITY,
        EmailCategory.BILLING,
    ]


def test_with_flags_refuses_unknown_names_and_non_booleans() -> None:
    with pytest.raises(InvalidPreferenceError, match="security"):
        NotificationPreferences(1).with_flags(security=False)
    with pytest.raises(InvalidPreferenceError, match="true or false"):
        NotificationPreferences(1).with_flags(marketing=1)  # type: ignore[arg-type]


# --- the service --------------------------------------------------------------------------


class World:
    def __init__(self) -> None:
        self.uow = InMemoryUnitOfWorkFactory()
        self.sender = InMemoryEmailSender()
        self.service = NotificationService(self.uow, self.sender)

    async def add_user(self, name: str = "ada") -> User:
        async with self.uow() as tx:
            user = await tx.users.add(
                User(email=Email(f"{name}@example.com"), username=Username(name), password_hash="x")
            )
            await tx.commit()
        return user

    async def deliver(self, user: User | None, template: str, category: EmailCategory) -> bool:
        context = {key: SAMPLE[key] for key in TEMPLATE_KEYS[template]}
        return await self.service.deliver(
            user_id=user.id if user else None,
            to=str(user.email) if user else "someone@example.com",
            template=template,
            context=context,
            category=category,
            message_id="m-1",
        )


@pytest.fixture
def world() -> World:
    return World()


async def test_deliver_renders_and_sends(world: World) -> None:
    user = await world.add_user()
    assert await world.deliver(user, VERIFY_EMAIL, EmailCategory.SECURITY) is True
    (sent,) = world.sender.outbox
    assert sent.to == "ada@example.com"
    assert sent.subject == "Confirm your email address"
    assert SAMPLE["link"] in sent.text and sent.html is not None
    assert sent.message_id == "m-1" and sent.category is EmailCategory.SECURITY


async def test_preferences_suppress_non_essential_mail_but_never_security_or_billing_mail(
    world: World,
) -> None:
    user = await world.add_user()
    assert user.id is not None
    await world.service.update_preferences(user.id, **dict.fromkeys(PREFERENCE_FLAGS, False))
    essential = (EmailCategory.SECURITY, EmailCategory.BILLING)
    for category in EmailCategory:
        sent = await world.deliver(user, WELCOME, category)
        assert sent is (category in essential), category
    assert [m.category for m in world.sender.outbox] == list(essential)


async def test_marketing_needs_an_opt_in(world: World) -> None:
    user = await world.add_user()
    assert user.id is not None
    assert await world.deliver(user, WELCOME, EmailCategory.MARKETING) is False
    assert await world.deliver(user, WELCOME, EmailCategory.ONBOARDING) is True
    await world.service.update_preferences(user.id, marketing=True)
    assert await world.deliver(user, WELCOME, EmailCategory.MARKETING) is True
    assert len(world.sender.outbox) == 2


async def test_non_essential_mail_needs_a_user_and_security_mail_does_not(world: World) -> None:
    with pytest.raises(ValueError, match="user_id"):
        await world.deliver(None, WELCOME, EmailCategory.ONBOARDING)
    assert await world.deliver(None, WELCOME, EmailCategory.SECURITY) is True


async def test_sender_failures_pass_through_deliver(world: World) -> None:
    user = await world.add_user()
    world.sender.fail_next(UnavailableError(dependency="email"))
    with pytest.raises(UnavailableError):
        await world.deliver(user, WELCOME, EmailCategory.SECURITY)


async def test_get_and_update_preferences(world: World) -> None:
    user = await world.add_user()
    assert user.id is not None
    assert await world.service.get_preferences(user.id) == NotificationPreferences(user.id)
    updated = await world.service.update_preferences(user.id, marketing=True, onboarding=False)
    assert updated == NotificationPreferences(user.id, marketing=True, onboarding=False)
    # Flags not named keep their value.
    again = await world.service.update_preferences(user.id, usage_alerts=False)
    assert again == NotificationPreferences(
        user.id, marketing=True, onboarding=False, usage_alerts=False
    )
    assert await world.service.get_preferences(user.id) == again
    assert await world.service.update_preferences(user.id) == again


async def test_update_preferences_refuses_bad_flags_and_unknown_users(world: World) -> None:
    user = await world.add_user()
    assert user.id is not None
    with pytest.raises(InvalidPreferenceError):
        await world.service.update_preferences(user.id, security=False)
    with pytest.raises(InvalidPreferenceError):
        await world.service.update_preferences(user.id, marketing="yes")  # type: ignore[arg-type]
    with pytest.raises(UserNotFoundError):
        await world.service.update_preferences(9999, marketing=True)
    assert await world.service.get_preferences(user.id) == NotificationPreferences(user.id)


# --- the job ------------------------------------------------------------------------------


class RecordingQueue:
    """A `JobQueue` that keeps what it was given, JSON round-tripped like a real one."""

    def __init__(self) -> None:
        self.jobs: list[Job] = []

    async def enqueue(
        self, name: str, payload: JobPayload, *, idempotency_key: str, delay_seconds: float = 0
    ) -> None:
        if any(j.name == name and j.idempotency_key == idempotency_key for j in self.jobs):
            return
        self.jobs.append(
            Job(
                id=len(self.jobs) + 1,
                name=name,
                payload=json.loads(json.dumps(payload)),
                idempotency_key=idempotency_key,
            )
        )


async def queue(
    jobs: RecordingQueue,
    user: User | None,
    template: str = WELCOME,
    category: EmailCategory = EmailCategory.ONBOARDING,
    key: str = "welcome:1",
    **context: str,
) -> None:
    await queue_email(
        jobs,
        user_id=user.id if user else None,
        to=str(user.email) if user else "someone@example.com",
        template=template,
        context=context or {"username": "ada"},
        category=category,
        idempotency_key=key,
    )


async def test_queue_email_enqueues_a_json_payload_once_per_key(world: World) -> None:
    user = await world.add_user()
    jobs = RecordingQueue()
    await queue(jobs, user)
    await queue(jobs, user)
    (job,) = jobs.jobs
    assert job.name == SEND_EMAIL_JOB == "notifications.send_email"
    assert job.idempotency_key == "welcome:1"
    assert job.payload == {
        "user_id": user.id,
        "to": "ada@example.com",
        "template": "welcome",
        "context": {"username": "ada"},
        "category": "onboarding",
    }


async def test_queue_email_checks_the_template_and_context_before_enqueuing() -> None:
    jobs = RecordingQueue()
    with pytest.raises(UnknownTemplateError):
        await queue(jobs, None, template="welcom", category=EmailCategory.SECURITY)
    with pytest.raises(MissingContextError):
        await queue(jobs, None, template=VERIFY_EMAIL, category=EmailCategory.SECURITY)
    with pytest.raises(ValueError, match="user_id"):
        await queue(jobs, None, category=EmailCategory.MARKETING)
    assert jobs.jobs == []


async def test_the_job_sends_with_the_idempotency_key_as_message_id(world: World) -> None:
    user = await world.add_user()
    jobs = RecordingQueue()
    await queue(
        jobs,
        user,
        template=VERIFY_EMAIL,
        category=EmailCategory.SECURITY,
        key="verify_email:1:9",
        username="ada",
        link="https://app.example/verify?token=t",
        expires_minutes="60",
    )
    (job,) = jobs.jobs
    await world.service.handle_send_email(job)
    await world.service.handle_send_email(job)  # a retry after a crash: same Message-ID
    first, second = world.sender.outbox
    assert first == second
    assert first.message_id == "verify_email:1:9" and "60 minutes" in first.text


async def test_the_job_reads_preferences_when_it_runs_not_when_queued(world: World) -> None:
    user = await world.add_user()
    assert user.id is not None
    jobs = RecordingQueue()
    await queue(jobs, user)  # onboarding: allowed when queued
    await world.service.update_preferences(user.id, onboarding=False)
    await world.service.handle_send_email(jobs.jobs[0])
    assert world.sender.outbox == []


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"to": "a@example.com", "template": "welcome", "context": {}, "category": "nonsense"},
        {"to": 5, "template": "welcome", "context": {"username": "a"}, "category": "security"},
        {"to": "a@example.com", "template": "welcome", "context": [], "category": "security"},
        {
            "user_id": "1",
            "to": "a@example.com",
            "template": "welcome",
            "context": {"username": "a"},
            "category": "security",
        },
        {"to": "a@example.com", "template": "nope", "context": {}, "category": "security"},
        {"to": "a@example.com", "template": "welcome", "context": {}, "category": "security"},
        {
            "to": "a@example.com",
            "template": "welcome",
            "context": {"username": "a"},
            "category": "marketing",
        },
        {
            "to": "a\r\nBcc: x@example.com",
            "template": "welcome",
            "context": {"username": "a"},
            "category": "security",
        },
    ],
    ids=[
        "empty",
        "bad-category",
        "bad-to",
        "bad-context",
        "bad-user-id",
        "unknown-template",
        "missing-key",
        "marketing-without-user",
        "header-injection",
    ],
)
async def test_a_job_that_cannot_succeed_fails_permanently(
    world: World, payload: dict[str, Any]
) -> None:
    job = Job(id=7, name=SEND_EMAIL_JOB, payload=payload, idempotency_key="k")
    with pytest.raises(PermanentJobError):
        await world.service.handle_send_email(job)
    assert world.sender.outbox == []


async def test_a_rejected_mail_fails_permanently_and_an_outage_is_retried(world: World) -> None:
    job = Job(
        id=1,
        name=SEND_EMAIL_JOB,
        payload={
            "user_id": None,
            "to": "a@example.com",
            "template": "welcome",
            "context": {"username": "a"},
            "category": "security",
        },
        idempotency_key="k",
    )
    world.sender.fail_next(EmailRejectedError())
    with pytest.raises(PermanentJobError):
        await world.service.handle_send_email(job)
    world.sender.fail_next(UnavailableError(dependency="email"))
    with pytest.raises(UnavailableError):
        await world.service.handle_send_email(job)
    await world.service.handle_send_email(job)
    assert len(world.sender.outbox) == 1
