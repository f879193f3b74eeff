"""Notification use cases: sending templated mail, and each user's preferences.

Other contexts send mail through a job, never inline: inside their own unit of work they
call `queue_email(uow.jobs, ...)`, so the mail goes out if and only if their change
commits, and a slow or broken mail server never slows or fails their request. The job
runner calls `NotificationService.handle_send_email` under `SEND_EMAIL_JOB`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.notifications.errors import EmailRejectedError
from core.notifications.model import EmailCategory, EmailMessage, NotificationPreferences
from core.notifications.ports import EmailSender, NotificationsUnitOfWorkFactory
from core.notifications.templates import TemplateLibrary, packaged_templates
from core.platform.jobs import Job, JobQueue, PermanentJobError

SEND_EMAIL_JOB = "notifications.send_email"


def _require_user_for(category: EmailCategory, user_id: int | None) -> None:
    # Preferences are per user: mail that a preference could suppress cannot be sent
    # to an address with no user behind it, or nobody could ever opt out of it.
    if user_id is None and not category.essential:
        raise ValueError(f"{category.value} email needs a user_id so preferences apply")


async def queue_email(
    jobs: JobQueue,
    *,
    user_id: int | None,
    to: str,
    template: str,
    context: Mapping[str, str],
    category: EmailCategory,
    idempotency_key: str,
) -> None:
    """Enqueue one templated email in the caller's unit of work.

    The template name and its context keys are checked now, so a typo fails the
    request that made it instead of a job much later (`UnknownTemplateError`,
    `MissingContextError`, both `ValueError`s). `idempotency_key` makes a repeated call
    a no-op and becomes the mail's Message-ID; derive it from the cause, e.g.
    `f"verify_email:{user_id}:{token_id}"`. Preferences are checked when the job runs.
    """
    packaged_templates().check(template, context)
    _require_user_for(category, user_id)
    await jobs.enqueue(
        SEND_EMAIL_JOB,
        {
            "user_id": user_id,
            "to": to,
            "template": template,
            "context": {key: str(value) for key, value in context.items()},
            "category": category.value,
        },
        idempotency_key=idempotency_key,
    )


class NotificationService:
    """Rules for notifications.

    - Security mail (verification, password reset, password changed) is always sent;
      every other category is sent only if the recipient's preferences allow it, as
      they are when the mail goes out (not when it was queued).
    - Non-essential mail needs a user: preferences are per user.
    - Mail is rendered from a packaged template; a missing placeholder value is an
      error, never a mail with a hole in it.
    - A user may change only the flags of the non-essential categories; marketing is
      off until they opt in.
    """

    def __init__(
        self,
        uow: NotificationsUnitOfWorkFactory,
        sender: EmailSender,
        templates: TemplateLibrary | None = None,
    ) -> None:
        self._uow = uow
        self._sender = sender
        # Read now (startup), so no request or job ever waits on the disk for them.
        self._templates = templates or packaged_templates()

    async def deliver(
        self,
        *,
        user_id: int | None,
        to: str,
        template: str,
        context: Mapping[str, str],
        category: EmailCategory,
        message_id: str | None = None,
    ) -> bool:
        """Render and send one email now; False when the user's preferences suppress it.

        Raises the template errors (`ValueError`s), `ValueError` for non-essential mail
        without a user, and whatever the sender raises (`UnavailableError`,
        `EmailRejectedError`).
        """
        rendered = self._templates.render(template, context)
        _require_user_for(category, user_id)
        if user_id is not None and not category.essential:
            preferences = await self.get_preferences(user_id)
            if not preferences.allows(category):
                return False
        await self._sender.send(
            EmailMessage(
                to=to,
                subject=rendered.subject,
                text=rendered.text,
                html=rendered.html,
                message_id=message_id,
                category=category,
            )
        )
        return True

    async def get_preferences(self, user_id: int) -> NotificationPreferences:
        """The user's preferences, or the defaults when they never saved any."""
        async with self._uow(read_only=True) as uow:
            return await uow.notification_preferences.get(user_id)

    async def update_preferences(self, user_id: int, **flags: bool) -> NotificationPreferences:
        """Change some flags, keep the others; returns what is stored.

        Unknown flags or non-boolean values raise `InvalidPreferenceError`.
        """
        # Validate before opening a write transaction (SQLite has one writer at a time).
        NotificationPreferences(user_id).with_flags(**flags)
        async with self._uow() as uow:
            current = await uow.notification_preferences.get(user_id)
            saved = await uow.notification_preferences.save(current.with_flags(**flags))
            await uow.commit()
        return saved

    async def handle_send_email(self, job: Job) -> None:
        """The `SEND_EMAIL_JOB` handler (payload as written by `queue_email`).

        Idempotent in the job runner's sense: the Message-ID is the job's idempotency
        key, so a mail repeated after a crash carries the same id and receivers can
        drop it. A bad payload, an unknown template or a permanent refusal by the mail
        server raises `PermanentJobError` (no retry); an unavailable server raises
        `UnavailableError`, which the runner retries with backoff.
        """
        user_id, to, template, context, category = _parse_payload(job.payload)
        try:
            await self.deliver(
                user_id=user_id,
                to=to,
                template=template,
                context=context,
                category=category,
                message_id=job.idempotency_key,
            )
        # Template errors and a malformed address are `ValueError`s: no retry fixes them.
        except (EmailRejectedError, ValueError) as exc:
            raise PermanentJobError(f"{SEND_EMAIL_JOB} job {job.id}: {exc}") from exc


def _parse_payload(
    payload: Mapping[str, Any],
) -> tuple[int | None, str, str, dict[str, str], EmailCategory]:
    try:
        user_id = payload.get("user_id")
        to = payload["to"]
        template = payload["template"]
        context = payload["context"]
        category = EmailCategory(payload["category"])
    except (KeyError, ValueError) as exc:
        raise PermanentJobError(f"{SEND_EMAIL_JOB}: malformed payload ({exc!r})") from exc
    if (
        not (user_id is None or (isinstance(user_id, int) and not isinstance(user_id, bool)))
        or not isinstance(to, str)
        or not isinstance(template, str)
        or not isinstance(context, dict)
    ):
        raise PermanentJobError(f"{SEND_EMAIL_JOB}: malformed payload")
    return user_id, to, template, {str(k): str(v) for k, v in context.items()}, category
