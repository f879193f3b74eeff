"""The composition root's tables: every port, service and job handler declared once,
and everything a service asks for provided by them."""

from __future__ import annotations

import inspect
import typing

import pytest
from dependency_injector import providers

from core.identity.callers import CallerReader, SeparateCallerReader
from core.platform.jobs import JobHandler
from entrypoints.bootstrap.container import PORTS, Container, _caller_reads
from entrypoints.bootstrap.jobs import JOB_HANDLERS, PERIODIC_JOBS, bind_handlers
from entrypoints.bootstrap.policies import POLICIES
from entrypoints.bootstrap.services import (
    COLLECTIONS,
    DECORATORS,
    FALLBACKS,
    SERVICES,
    Services,
)
from tests.unit.core.identity_world import World


def test_every_adapter_choice_of_the_container_is_a_port() -> None:
    selectors = {
        name for name, p in Container.cls_providers.items() if isinstance(p, providers.Selector)
    }
    assert selectors, "no Selector found: wrong container?"
    assert selectors <= set(PORTS.values())
    assert set(PORTS.values()) <= set(Container.cls_providers)


def _constructor_needs(kind: type) -> dict[str, object]:
    hints = typing.get_type_hints(kind.__init__)
    hints.pop("return", None)
    params = inspect.signature(kind.__init__).parameters
    return {
        name: hint for name, hint in hints.items() if params[name].default is params[name].empty
    }


def test_every_service_needs_only_what_the_tables_provide() -> None:
    provided = set(PORTS) | set(SERVICES) | set(COLLECTIONS)
    policy_types = {typing.get_type_hints(make)["return"] for make in POLICIES}
    provided |= policy_types
    members = [member for group in COLLECTIONS.values() for member in group]
    built = [*SERVICES, *DECORATORS.values(), *FALLBACKS.values(), *members]
    missing = {
        f"{kind.__name__}.{name}: {hint}"
        for kind in built
        for name, hint in _constructor_needs(kind).items()
        if hint not in provided and name != "inner"
    }
    assert missing == set()
    assert set(DECORATORS) <= set(PORTS) and set(FALLBACKS) <= set(PORTS)


def test_the_core_reads_callers_store_by_store_unless_all_share_one_redis() -> None:
    # The in-memory profile: no adapter selected, the core's fallback serves.
    assert isinstance(World().services.get(CallerReader), SeparateCallerReader)
    assert _caller_reads(World().settings) == "separate"
    mixed = World().settings.model_copy(deep=True)
    mixed.sessions.backend = mixed.cache.backend = "redis"
    assert _caller_reads(mixed) == "separate"  # rate limits elsewhere
    mixed.rate_limit.backend = "redis"
    assert _caller_reads(mixed) == "redis"


def test_every_job_handler_is_a_method_of_a_service_and_every_periodic_job_has_one() -> None:
    world = World()
    bound = bind_handlers(world.services)
    assert set(bound) == set(JOB_HANDLERS)
    for name, handler in bound.items():
        assert inspect.ismethod(handler) and type(handler.__self__) in SERVICES, name
    assert {job.name for job in PERIODIC_JOBS} <= set(bound)


def test_a_handler_of_a_class_that_is_not_a_service_is_refused() -> None:
    class Stray:
        async def handle(self, _job: object) -> None: ...

    world = World()
    table: dict[str, JobHandler] = {"stray.job": Stray.handle}  # type: ignore[dict-item]
    with pytest.raises(ValueError, match=r"Stray\.handle"):
        bind_handlers(world.services, table)


def test_services_are_built_once_and_shared_by_type() -> None:
    world = World()
    services: Services = world.services
    for service in SERVICES:
        assert services.get(service) is services.get(service)
        assert isinstance(services.get(service), service)
