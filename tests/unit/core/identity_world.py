"""Every identity service on in-memory ports, with a manual clock and a job runner the
test drives (no sockets, no sleeps)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from adapters.memory.cache import InMemoryCache
from adapters.memory.clock import ManualClock
from adapters.memory.email import InMemoryEmailSender
from adapters.memory.identity import InMemoryUnitOfWorkFactory
from adapters.memory.jobs import InMemoryJobStore, InMemoryOutbox
from adapters.memory.rate_limit import InMemoryRateLimiter
from adapters.memory.security import InMemoryPasswordHasher
from adapters.memory.sessions import InMemorySessionStore
from adapters.system.tokens import SecretsTokenGenerator
from core.audit.model import AuditEntry
from core.identity.one_time_tokens import PURGE_EXPIRED_TOKENS_JOB, TokenMaintenanceService
from core.identity.passwords import PasswordPolicy
from core.identity.policy import AccountLinkPolicy, SessionPolicy
from core.identity.recovery import SEND_PASSWORD_RESET_JOB, PasswordResetService
from core.identity.service import AccountService, AuthenticationService
from core.identity.throttle import LoginThrottle, LoginThrottlePolicy
from core.identity.user_cache import CachedUsers, InvalidatingUnitOfWorkFactory
from core.identity.verification import SEND_VERIFICATION_EMAIL_JOB, EmailVerificationService
from core.notifications.model import EmailMessage
from core.notifications.service import SEND_EMAIL_JOB, NotificationService
from core.platform.cache import Cache
from core.platform.jobs import Job, JobHandler
from core.shared.query import ListQuery, PageRequest

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new staple 42"
FRONTEND = "https://app.example.com"
_TOKEN_IN_LINK = re.compile(r"[?&]token=([A-Za-z0-9_-]+)")


class World:
    def __init__(self, cache: Cache | None = None) -> None:
        self.clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
        self.jobs = InMemoryJobStore(self.clock)
        self.outbox = InMemoryOutbox(self.jobs)
        self.store = InMemoryUnitOfWorkFactory(jobs=self.jobs)
        self.cache = cache if cache is not None else InMemoryCache(self.clock)
        self.users = CachedUsers(self.store, self.cache)
        # As bootstrap wires it: a commit forgets the users it changed.
        self.uow = InvalidatingUnitOfWorkFactory(self.store, self.users)
        self.sessions = InMemorySessionStore(self.clock)
        self.hasher = InMemoryPasswordHasher()
        self.tokens = SecretsTokenGenerator()
        self.sender = InMemoryEmailSender()
        self.links = AccountLinkPolicy(frontend_url=FRONTEND)
        policy = PasswordPolicy(min_length=12)
        self.notifications = NotificationService(self.store, self.sender)
        self.throttle = LoginThrottle(
            InMemoryRateLimiter(self.clock),
            InMemoryRateLimiter(self.clock),
            LoginThrottlePolicy(per_account=5, per_address=20, window_seconds=600),
        )
        self.accounts = AccountService(
            self.uow, self.sessions, self.hasher, self.clock, policy, self.throttle
        )
        self.auth = AuthenticationService(
            self.uow,
            self.sessions,
            self.hasher,
            self.tokens,
            self.clock,
            SessionPolicy(idle_timeout_seconds=600, absolute_lifetime_seconds=3600),
            throttle=self.throttle,
            users=self.users,
        )
        self.verification = EmailVerificationService(
            self.uow, self.notifications, self.tokens, self.clock, self.links
        )
        self.reset = PasswordResetService(
            self.uow,
            self.sessions,
            self.hasher,
            self.notifications,
            self.tokens,
            self.clock,
            policy,
            self.links,
        )
        self.maintenance = TokenMaintenanceService(self.uow, self.clock)
        self.handlers: dict[str, JobHandler] = {
            SEND_EMAIL_JOB: self.notifications.handle_send_email,
            SEND_VERIFICATION_EMAIL_JOB: self.verification.handle_send_verification_email,
            SEND_PASSWORD_RESET_JOB: self.reset.handle_send_password_reset,
            PURGE_EXPIRED_TOKENS_JOB: self.maintenance.handle_purge_expired_tokens,
        }

    def pending_jobs(self, name: str | None = None) -> list[Job]:
        """Committed jobs not run yet (optionally of one name)."""
        return [
            row.job()
            for row in self.jobs.rows.values()
            if row.status == "pending" and (name is None or row.name == name)
        ]

    async def run_jobs(self) -> list[Job]:
        """Run every due job (and the jobs they enqueue) once; returns what ran."""
        ran: list[Job] = []
        while True:
            claimed = await self.outbox.claim(self.clock.now(), limit=100, lease_seconds=60)
            if not claimed:
                return ran
            for job in claimed:
                started = await self.outbox.start(job, self.clock.now(), lease_seconds=60)
                assert started is not None
                await self.handlers[started.name](started)
                await self.outbox.complete(started, self.clock.now())
                ran.append(started)

    async def audit(self, **filters: object) -> list[AuditEntry]:
        from core.shared.query import parse_filters

        async with self.uow(read_only=True) as tx:
            page = await tx.audit.list(
                ListQuery(conditions=parse_filters(filters), page=PageRequest(limit=100))
            )
        return page.items

    def mails(self, to: str, template_subject: str | None = None) -> list[EmailMessage]:
        sent = self.sender.sent_to(to)
        if template_subject is None:
            return sent
        return [m for m in sent if template_subject.lower() in m.subject.lower()]


def token_in(message: EmailMessage) -> str:
    """The token of the (only) link in a mail."""
    found = set(_TOKEN_IN_LINK.findall(message.text))
    assert len(found) == 1, message.text
    return found.pop()
