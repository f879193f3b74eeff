"""Every core service on in-memory ports, wired by the same registry code as production
(`container.PORTS`, `build_services`, `bind_handlers`), with a manual clock, a cheap
hasher and a job runner the test drives (no sockets, no sleeps)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from dependency_injector import providers

from adapters.memory.clock import ManualClock
from adapters.memory.email import InMemoryEmailSender
from adapters.memory.jobs import InMemoryJobStore, InMemoryOutbox
from adapters.memory.security import InMemoryPasswordHasher
from adapters.memory.sessions import InMemorySessionStore
from adapters.memory.telemetry import InMemoryTelemetry
from adapters.memory.unit_of_work import InMemoryUnitOfWorkFactory
from core.audit.model import AuditEntry
from core.identity.ports import IdentityUnitOfWorkFactory, PasswordHasher, SessionStore
from core.identity.service import (
    AccountService,
    AuthenticationService,
    EmailVerificationService,
    OAuthService,
    PasswordResetService,
    TokenMaintenanceService,
    TokenService,
)
from core.identity.throttle import LoginThrottle
from core.identity.user_cache import CachedUsers, UserCachePolicy
from core.notifications.model import EmailMessage
from core.notifications.ports import EmailSender
from core.notifications.service import NotificationService
from core.platform.cache import Cache
from core.platform.jobs import Job, JobHandler, Outbox
from core.shared.ids import TokenGenerator
from core.shared.query import ListQuery, PageRequest, parse_filters
from entrypoints.bootstrap.container import build_container, port_providers
from entrypoints.bootstrap.jobs import bind_handlers
from entrypoints.bootstrap.policies import build_policies
from entrypoints.bootstrap.services import Services, build_services
from entrypoints.bootstrap.settings import Settings
from tests.settings_merge import merge

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new staple 42"
FRONTEND = "https://app.example.com"
_TOKEN_IN_LINK = re.compile(r"[?&]token=([A-Za-z0-9_-]+)")

WORLD_SETTINGS: dict[str, Any] = {
    "env": "test",
    "secret_key": "identity-world-secret-key-0123456789-abcdefghij",
    "database": {"backend": "memory"},
    "sessions": {
        "backend": "memory",
        "idle_timeout_seconds": 600,
        "absolute_lifetime_seconds": 3600,
    },
    "email": {"backend": "memory"},
    "oauth": {"backend": "memory"},
    "accounts": {"frontend_url": FRONTEND},
    "rate_limit": {"login_per_account": 5, "login_per_address": 20, "login_window_seconds": 600},
}


class World:
    """`World(cache=..., ports={Port: instance}, **settings)`: `ports` replaces adapters
    the container would pick; `settings` are nested overrides of `WORLD_SETTINGS`."""

    def __init__(
        self,
        cache: Cache | None = None,
        *,
        ports: Mapping[type, object] | None = None,
        **settings: Any,
    ) -> None:
        self.clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
        self.settings = Settings(_env_file=None, **merge(WORLD_SETTINGS, settings))  # type: ignore[call-arg]
        container = build_container(self.settings)
        container.clock.override(providers.Object(self.clock))
        container.password_hasher.override(providers.Object(InMemoryPasswordHasher()))
        # What the services report, read back by sample name (`telemetry.value`).
        self.telemetry = InMemoryTelemetry()
        container.telemetry.override(providers.Object(self.telemetry))
        if cache is not None:
            container.cache.override(providers.Object(cache))
        # Memory adapters have no async resources, so every provider answers at once.
        self.ports: dict[type, object] = {
            kind: provider() for kind, provider in port_providers(container).items()
        }
        self.ports.update(ports or {})
        policies = build_policies(self.settings)
        # One process, one clock: the memory backend's one-second cap on cached users
        # (for changes made by other processes) has nothing to guard against here.
        policies[UserCachePolicy] = UserCachePolicy(self.settings.cache.user_ttl_seconds)
        self.services: Services = build_services(self.ports, policies)
        self.handlers: dict[str, JobHandler] = bind_handlers(self.services)

        store = self.ports[IdentityUnitOfWorkFactory]
        assert isinstance(store, InMemoryUnitOfWorkFactory)
        self.store = store
        outbox = self.ports[Outbox]
        assert isinstance(outbox, InMemoryOutbox)
        self.outbox = outbox
        jobs = store.database.jobs
        assert isinstance(jobs, InMemoryJobStore)
        self.jobs = jobs
        sender = self.ports[EmailSender]
        assert isinstance(sender, InMemoryEmailSender)
        self.sender = sender
        sessions = self.ports[SessionStore]
        assert isinstance(sessions, InMemorySessionStore)
        self.sessions = sessions
        self.hasher = self.ports[PasswordHasher]
        self.cache = self.services.get(Cache)
        self.tokens = self.services.get(TokenGenerator)
        # As every service sees it: a commit forgets the users it changed.
        self.uow = self.services.get(IdentityUnitOfWorkFactory)
        self.users = self.services.get(CachedUsers)
        self.throttle = self.services.get(LoginThrottle)
        self.notifications = self.services.get(NotificationService)
        self.accounts = self.services.get(AccountService)
        self.auth = self.services.get(AuthenticationService)
        self.verification = self.services.get(EmailVerificationService)
        self.reset = self.services.get(PasswordResetService)
        self.maintenance = self.services.get(TokenMaintenanceService)
        self.api_tokens = self.services.get(TokenService)
        self.oauth = self.services.get(OAuthService)

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
