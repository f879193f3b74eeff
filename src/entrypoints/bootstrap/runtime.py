"""What an entrypoint gets from bootstrap: the settings, the services, readiness probes.

An HTTP app, a worker or a CLI calls `start_runtime(settings)` once per process (or per
test), uses `runtime.accounts`, `runtime.auth`, ... and calls `await runtime.aclose()` at
the end. Nothing is resolved per request.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from adapters.sqlalchemy.engine import ping as ping_database
from adapters.sqlalchemy.schema import create_tables
from core.identity.oauth import OAuthService
from core.identity.service import (
    AccountService,
    AuthenticationService,
    EmailVerificationService,
    PasswordResetService,
    TokenMaintenanceService,
    TokenService,
)
from core.notifications.service import NotificationService
from core.platform.cache import Cache
from core.platform.rate_limit import RateLimiter
from core.shared.clock import Clock
from core.shared.errors import UnavailableError
from entrypoints.bootstrap.container import Container, build_container
from entrypoints.bootstrap.jobs import JobsRuntime, start_jobs
from entrypoints.bootstrap.logging import configure_logging
from entrypoints.bootstrap.security_check import startup_check
from entrypoints.bootstrap.services import Ports, build_registry, resolve_services
from entrypoints.bootstrap.settings import Settings

log = structlog.get_logger("portico.bootstrap")

ReadinessProbe = Callable[[], Awaitable[None]]
PROBE_TIMEOUT_SECONDS = 2.0


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    accounts: AccountService
    auth: AuthenticationService
    notifications: NotificationService
    email_verification: EmailVerificationService
    password_reset: PasswordResetService
    identity_tokens: TokenMaintenanceService
    # Bearer tokens for mobile and API clients (sign-in, refresh, revoke, authenticate).
    api_tokens: TokenService
    # Sign-in with GitHub or Google (only the providers the settings enable).
    oauth: OAuthService
    # Set by `start_runtime` from the cache and rate-limit backends the settings choose.
    cache: Cache = field(init=False, repr=False)
    rate_limiter: RateLimiter = field(init=False, repr=False)
    probes: dict[str, ReadinessProbe] = field(default_factory=dict)
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list, repr=False)
    # Background jobs (entrypoints/bootstrap/jobs.py); set by `start_runtime`.
    jobs: JobsRuntime = field(init=False, repr=False)

    async def drain_jobs(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109  (a bound on the whole drain)
        """Run due jobs in this task until none is left (tests); `TimeoutError` after
        `timeout` seconds. Call it on the event loop the runtime was started on."""
        await self.jobs.drain(timeout)

    async def readiness(self) -> dict[str, str]:
        """Probe every configured dependency at once: name -> "ok" or a short reason."""

        async def run(probe: ReadinessProbe) -> str:
            try:
                await asyncio.wait_for(probe(), PROBE_TIMEOUT_SECONDS)
            except TimeoutError:
                return "timeout"
            except UnavailableError as exc:
                return exc.detail
            except Exception as exc:  # a probe must report, never crash /ready
                return type(exc).__name__
            return "ok"

        names = list(self.probes)
        results = await asyncio.gather(*(run(self.probes[n]) for n in names))
        return dict(zip(names, results, strict=True))

    async def aclose(self) -> None:
        for close in reversed(self._closers):
            await close()
        self._closers.clear()


async def _provide(provider: Any) -> Any:
    """Call a provider; those downstream of an async Resource return an awaitable."""
    value = provider()
    return await value if inspect.isawaitable(value) else value


async def start_runtime(
    settings: Settings, container: Container | None = None, *, run_jobs: bool = True
) -> Runtime:
    """Build everything a process needs, in dependency order; undo it all on failure.

    `run_jobs` starts this process's job loops as `PORTICO_JOBS__RUNNER` says (see
    `entrypoints/bootstrap/jobs.py`); Celery workers and the CLI pass False.
    With `PORTICO_ENV=production` the security check runs first and raises
    `SecurityCheckFailed` (listing every problem) before anything starts.
    """
    configure_logging(settings.log_level)
    if settings.is_production:
        # Before anything is built, so a refused start opens no connection and no file.
        startup_check(settings)
    container = container or build_container(settings)
    try:
        ports = Ports(
            identity_uow=await _provide(container.identity_uow),
            user_cache=await _provide(container.user_cache),
            session_store=await _provide(container.session_store),
            password_hasher=await _provide(container.password_hasher),
            clock=await _provide(container.clock),
            tokens=await _provide(container.tokens),
            session_policy=await _provide(container.session_policy),
            password_policy=await _provide(container.password_policy),
            notifications_uow=await _provide(container.notifications_uow),
            email_sender=await _provide(container.email_sender),
            account_links=await _provide(container.account_links),
            access_token_codec=await _provide(container.access_token_codec),
            token_policy=await _provide(container.token_policy),
            login_throttle=await _provide(container.login_throttle),
            oauth_providers=await _provide(container.oauth_providers),
        )
        if settings.database.backend == "sql" and settings.database.auto_create:
            await create_tables(await _provide(container.engine))
    except BaseException:
        await _shutdown(container)
        raise
    services = resolve_services(build_registry(ports))
    if settings.secret_key_generated:
        log.warning(
            "secret_key_generated",
            detail="PORTICO_SECRET_KEY is not set; a random key was made for this process",
        )
    runtime = Runtime(
        settings=settings,
        clock=ports.clock,
        accounts=services[AccountService],
        auth=services[AuthenticationService],
        notifications=services[NotificationService],
        email_verification=services[EmailVerificationService],
        password_reset=services[PasswordResetService],
        identity_tokens=services[TokenMaintenanceService],
        api_tokens=services[TokenService],
        oauth=services[OAuthService],
    )
    if settings.database.backend == "sql":
        engine = await _provide(container.engine)
        runtime.probes["database"] = lambda: ping_database(engine)
    runtime.probes["sessions"] = ports.session_store.ping
    runtime._closers.append(lambda: _shutdown(container))
    try:
        runtime.cache = await _provide(container.cache)
        runtime.rate_limiter = await _provide(container.rate_limiter)
    except BaseException:
        await runtime.aclose()
        raise
    if settings.cache.backend != "memory":
        runtime.probes["cache"] = runtime.cache.ping
    if settings.rate_limit.backend != "memory":
        runtime.probes["rate_limit"] = runtime.rate_limiter.ping
    try:
        await _start_jobs(runtime, container, run_jobs=run_jobs)
    except BaseException:
        await runtime.aclose()
        raise
    return runtime


async def _start_jobs(runtime: Runtime, container: Container, *, run_jobs: bool) -> None:
    inline = runtime.settings.jobs.runner == "inline"
    jobs = await start_jobs(
        runtime,
        outbox=await _provide(container.outbox),
        dispatcher=await _provide(container.job_dispatcher),
        wakeup=await _provide(container.job_wakeup),
        local=await _provide(container.inline_jobs) if inline else None,
        policy=await _provide(container.job_policy),
        run_loops=run_jobs,
    )
    # Added after the container's closer, so the loops stop before the engine closes.
    runtime._closers.append(jobs.aclose)


async def _shutdown(container: Container) -> None:
    result = container.shutdown_resources()
    if inspect.isawaitable(result):
        await result
