"""The punq service registry: core services autowired from the ports, built once.

Adding a service is one `register` line; its constructor's type hints say what it needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import punq

from core.identity.oauth import OAuthProviders, OAuthService
from core.identity.passwords import PasswordPolicy
from core.identity.policy import AccountLinkPolicy, SessionPolicy
from core.identity.ports import (
    AccessTokenCodec,
    IdentityUnitOfWorkFactory,
    PasswordHasher,
    SessionStore,
)
from core.identity.service import (
    AccountService,
    AuthenticationService,
    EmailVerificationService,
    PasswordResetService,
    TokenMaintenanceService,
    TokenPolicy,
    TokenService,
)
from core.identity.throttle import LoginThrottle
from core.identity.user_cache import CachedUsers, InvalidatingUnitOfWorkFactory
from core.notifications.ports import EmailSender, NotificationsUnitOfWorkFactory
from core.notifications.service import NotificationService
from core.shared.clock import Clock
from core.shared.ids import TokenGenerator

SERVICE_CLASSES: tuple[type, ...] = (
    AccountService,
    AuthenticationService,
    NotificationService,
    EmailVerificationService,
    PasswordResetService,
    TokenMaintenanceService,
    TokenService,
    OAuthService,
)


@dataclass(frozen=True)
class Ports:
    """The port instances chosen by the dependency-injector container."""

    identity_uow: IdentityUnitOfWorkFactory
    # The per-request user read (cache-aside over `identity_uow`).
    user_cache: CachedUsers
    session_store: SessionStore
    password_hasher: PasswordHasher
    clock: Clock
    tokens: TokenGenerator
    session_policy: SessionPolicy
    password_policy: PasswordPolicy
    notifications_uow: NotificationsUnitOfWorkFactory
    email_sender: EmailSender
    account_links: AccountLinkPolicy
    access_token_codec: AccessTokenCodec
    token_policy: TokenPolicy
    login_throttle: LoginThrottle
    oauth_providers: OAuthProviders


def build_registry(ports: Ports) -> punq.Container:
    registry = punq.Container()
    # Every service writes through this one: a commit that changed users forgets them
    # in `user_cache`, so no use case can leave a stale user behind.
    registry.register(
        IdentityUnitOfWorkFactory,
        instance=InvalidatingUnitOfWorkFactory(ports.identity_uow, ports.user_cache),
    )
    registry.register(CachedUsers, instance=ports.user_cache)
    registry.register(SessionStore, instance=ports.session_store)
    registry.register(PasswordHasher, instance=ports.password_hasher)
    registry.register(Clock, instance=ports.clock)
    registry.register(TokenGenerator, instance=ports.tokens)
    registry.register(SessionPolicy, instance=ports.session_policy)
    registry.register(PasswordPolicy, instance=ports.password_policy)
    registry.register(NotificationsUnitOfWorkFactory, instance=ports.notifications_uow)
    registry.register(EmailSender, instance=ports.email_sender)
    registry.register(AccountLinkPolicy, instance=ports.account_links)
    registry.register(AccessTokenCodec, instance=ports.access_token_codec)
    registry.register(TokenPolicy, instance=ports.token_policy)
    registry.register(LoginThrottle, instance=ports.login_throttle)
    registry.register(OAuthProviders, instance=ports.oauth_providers)
    for service in SERVICE_CLASSES:
        registry.register(service, scope=punq.Scope.singleton)
    return registry


def resolve_services(registry: punq.Container) -> dict[type, Any]:
    """Resolve every service once, at startup (punq resolution is too slow per request)."""
    return {service: registry.resolve(service) for service in SERVICE_CLASSES}
