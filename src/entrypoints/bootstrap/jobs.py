"""Which jobs this deployment runs: one line per job handler and per periodic job.

The runners themselves live in `core/platform/job_runner.py`; which of them run in a
process is `PORTICO_JOBS__RUNNER` (see `runtime.start_runtime`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from core.billing.reservations import SWEEP_RESERVATIONS_JOB, ReservationService
from core.conversations.maintenance import SWEEP_STALE_REPLIES_JOB, ReplySweep
from core.identity.one_time_tokens import PURGE_EXPIRED_TOKENS_JOB, TokenMaintenanceService
from core.identity.recovery import SEND_PASSWORD_RESET_JOB, PasswordResetService
from core.identity.verification import SEND_VERIFICATION_EMAIL_JOB, EmailVerificationService
from core.notifications.service import SEND_EMAIL_JOB, NotificationService
from core.payments.events import RECONCILE_EVENTS_JOB, PaymentEventService
from core.payments.subscriptions import MAINTAIN_SUBSCRIPTIONS_JOB, SubscriptionMaintenance
from core.platform.job_admin import PURGE_JOBS_JOB, JobAdminService, PeriodicJob
from core.platform.jobs import JobHandler
from entrypoints.bootstrap.services import Services
from entrypoints.bootstrap.settings import Settings

# Every job name and the service method that runs it (an `async def handle_x(self, job)`
# of a class in `SERVICES`). Handlers must be idempotent under the job's idempotency key
# (see `core.platform.jobs.JobHandler`).
JOB_HANDLERS: Mapping[str, Callable[..., Any]] = {
    PURGE_JOBS_JOB: JobAdminService.handle_purge_jobs,
    SEND_EMAIL_JOB: NotificationService.handle_send_email,
    SEND_VERIFICATION_EMAIL_JOB: EmailVerificationService.handle_send_verification_email,
    SEND_PASSWORD_RESET_JOB: PasswordResetService.handle_send_password_reset,
    PURGE_EXPIRED_TOKENS_JOB: TokenMaintenanceService.handle_purge_expired_tokens,
    SWEEP_RESERVATIONS_JOB: ReservationService.handle_sweep_reservations,
    RECONCILE_EVENTS_JOB: PaymentEventService.handle_reconcile_events,
    MAINTAIN_SUBSCRIPTIONS_JOB: SubscriptionMaintenance.handle_maintain_subscriptions,
    SWEEP_STALE_REPLIES_JOB: ReplySweep.handle_sweep_stale_replies,
}

# Enqueued once per period (each needs a handler above). Celery beat enqueues them in
# production (entrypoints/worker/beat.py reads this list); the inline runner does it
# itself. One job per period, however many schedulers.
PERIODIC_JOBS: tuple[PeriodicJob, ...] = (
    PeriodicJob(PURGE_JOBS_JOB, every_seconds=3600),
    PeriodicJob(PURGE_EXPIRED_TOKENS_JOB, every_seconds=3600),
    PeriodicJob(SWEEP_RESERVATIONS_JOB, every_seconds=60),
    PeriodicJob(RECONCILE_EVENTS_JOB, every_seconds=900),
    PeriodicJob(MAINTAIN_SUBSCRIPTIONS_JOB, every_seconds=300),
    PeriodicJob(SWEEP_STALE_REPLIES_JOB, every_seconds=120),
)

ExtraHandlers = Callable[[Services, Settings], Mapping[str, JobHandler]]


def bind_handlers(
    services: Services, table: Mapping[str, Callable[..., Any]] = JOB_HANDLERS
) -> dict[str, JobHandler]:
    """Each handler of `table`, bound to the one instance of the service defining it."""
    bound: dict[str, JobHandler] = {}
    for name, method in table.items():
        owner = _owner(method, services.types())
        bound[name] = getattr(services.get(owner), method.__name__)
    return bound


def _owner(method: Callable[..., Any], candidates: Iterable[type]) -> type:
    for kind in candidates:
        if getattr(kind, method.__name__, None) is method:
            return kind
    raise ValueError(f"{method.__qualname__} is not a method of a registered service")


def job_handlers(services: Services, settings: Settings) -> dict[str, JobHandler]:
    """`JOB_HANDLERS` bound, plus the extras `PORTICO_JOBS__EXTRA_HANDLERS` names."""
    handlers = bind_handlers(services)
    for name, handler in load_extra_handlers(settings.jobs.extra_handlers, services, settings):
        if name in handlers:
            raise ValueError(f"job {name!r} has two handlers")
        handlers[name] = handler
    return handlers


def load_extra_handlers(
    specs: Sequence[str], services: Services, settings: Settings
) -> list[tuple[str, JobHandler]]:
    """Handlers from `PORTICO_JOBS__EXTRA_HANDLERS` ("package.module:function" each).

    Each function takes the services and the settings and returns {job name: handler}.
    A generic extension point (plugins; the integration tests register their probe jobs
    this way); empty in a standard deployment. A name given twice is an error.
    """
    handlers: dict[str, JobHandler] = {}
    for spec in specs:
        module_name, _, attribute = spec.partition(":")
        if not module_name or not attribute:
            raise ValueError(f"extra job handlers must be 'module:function', got {spec!r}")
        factory: ExtraHandlers = getattr(importlib.import_module(module_name), attribute)
        for name, handler in factory(services, settings).items():
            if name in handlers:
                raise ValueError(f"job {name!r} has two handlers")
            handlers[name] = handler
    return list(handlers.items())
