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
from core.identity.service import AccountService, AuthenticationService
from core.shared.clock import Clock
from core.shared.errors import UnavailableError
from entrypoints.bootstrap.container import Container, build_container
from entrypoints.bootstrap.logging import configure_logging
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
    probes: dict[str, ReadinessProbe] = field(default_factory=dict)
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list, repr=False)

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


async def start_runtime(settings: Settings, container: Container | None = None) -> Runtime:
    """Build everything a process needs, in dependency order; undo it all on failure."""
    configure_logging(settings.log_level)
    container = container or build_container(settings)
    try:
        ports = Ports(
            identity_uow=await _provide(container.identity_uow),
            session_store=await _provide(container.session_store),
            password_hasher=await _provide(container.password_hasher),
            clock=await _provide(container.clock),
            tokens=await _provide(container.tokens),
            session_policy=await _provide(container.session_policy),
            password_policy=await _provide(container.password_policy),
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
    )
    if settings.database.backend == "sql":
        engine = await _provide(container.engine)
        runtime.probes["database"] = lambda: ping_database(engine)
    runtime.probes["sessions"] = ports.session_store.ping
    runtime._closers.append(lambda: _shutdown(container))
    return runtime


async def _shutdown(container: Container) -> None:
    result = container.shutdown_resources()
    if inspect.isawaitable(result):
        await result
