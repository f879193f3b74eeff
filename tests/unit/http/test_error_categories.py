"""The category of a core error alone picks its HTTP status (quota refusals aside)."""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Iterator

import pytest

import core
from core.identity.errors import WrongPasswordError
from core.shared.errors import (
    AuthenticationError,
    ConflictError,
    DomainError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitedError,
    RuleViolationError,
    UnavailableError,
)
from entrypoints.http.errors import domain_error_response

CATEGORY_STATUS: dict[type[DomainError], int] = {
    NotFoundError: 404,
    ConflictError: 409,
    PermissionDeniedError: 403,
    AuthenticationError: 401,
    RuleViolationError: 422,
    RateLimitedError: 429,
    UnavailableError: 503,
}


def _every_core_error() -> list[type[DomainError]]:
    for module in pkgutil.walk_packages(core.__path__, "core."):
        importlib.import_module(module.name)

    def below(cls: type[DomainError]) -> Iterator[type[DomainError]]:
        for sub in cls.__subclasses__():
            yield sub
            yield from below(sub)

    # Quota refusals answer per reason (402, 403 or 429), by design.
    found = {cls for cls in below(DomainError) if not issubclass(cls, QuotaExceededError)}
    return sorted(found, key=lambda cls: (cls.__module__, cls.__name__))


def _expected_status(error: type[DomainError]) -> int:
    for base in error.__mro__:
        if base in CATEGORY_STATUS:
            return CATEGORY_STATUS[base]
    return 400


ERRORS = _every_core_error()


@pytest.mark.parametrize("error", ERRORS, ids=[cls.__name__ for cls in ERRORS])
def test_the_category_alone_picks_the_status(error: type[DomainError]) -> None:
    response = domain_error_response(error())
    assert response.status_code == _expected_status(error)
    assert json.loads(bytes(response.body))["code"] == error.code


def test_a_wrong_confirmation_password_is_a_permission_refusal() -> None:
    # The caller is signed in: a 401 (and its challenge) would tell clients to sign in again.
    assert WrongPasswordError in ERRORS  # control: the walk above found it
    assert issubclass(WrongPasswordError, PermissionDeniedError)
    assert not issubclass(WrongPasswordError, AuthenticationError)
    response = domain_error_response(WrongPasswordError())
    assert response.status_code == 403 and "www-authenticate" not in response.headers
