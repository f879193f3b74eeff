"""The punq service registry: core services autowired from ports and policies, built once.

Adding a service is one line in `SERVICES`; its constructor's type hints say what it
needs (ports from `container.PORTS`, policies from `policies.POLICIES`, other services).
Everything is resolved at startup: nothing is resolved per request (punq resolution
costs ~100 us).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

import punq

from core.audit.service import AuditTrail
from core.billing.catalog import CatalogService
from core.billing.credits import CreditService
from core.billing.entitlements import EntitlementCache, EntitlementService
from core.billing.plans import PlanService
from core.billing.reservations import ReservationService
from core.billing.resolvers import (
    CreditResolver,
    EnterpriseResolver,
    EntitlementResolvers,
    ProductResolver,
    TierResolver,
)
from core.conversations.conversations import ConversationService
from core.conversations.maintenance import ReplySweep
from core.conversations.prices import PriceService
from core.conversations.sending import MessageService
from core.identity.administration import UserAdministration
from core.identity.callers import CallerReader, SeparateCallerReader
from core.identity.ports import IdentityUnitOfWorkFactory
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
from core.identity.user_cache import CachedUsers, UserCache
from core.identity.user_invalidation import InvalidatingUnitOfWorkFactory
from core.notifications.service import NotificationService
from core.payments.checkout import CheckoutService
from core.payments.effects import EventEffects
from core.payments.events import PaymentEventService
from core.payments.ports import PaymentsUnitOfWorkFactory
from core.payments.subscriptions import SubscriptionMaintenance, SubscriptionRules
from core.platform.job_admin import JobAdminService

T = TypeVar("T")

SERVICES: tuple[type, ...] = (
    # platform
    JobAdminService,
    # audit
    AuditTrail,
    # notifications
    NotificationService,
    # identity
    LoginThrottle,
    UserCache,
    CachedUsers,
    AccountService,
    AuthenticationService,
    EmailVerificationService,
    PasswordResetService,
    TokenMaintenanceService,
    TokenService,
    OAuthService,
    UserAdministration,
    # billing
    EntitlementCache,
    CatalogService,
    PlanService,
    CreditService,
    ReservationService,
    EntitlementService,
    # payments
    SubscriptionRules,
    SubscriptionMaintenance,
    EventEffects,
    PaymentEventService,
    CheckoutService,
    # conversations
    PriceService,
    ConversationService,
    MessageService,
    ReplySweep,
)

# A type that stands for several classes, built (autowired, once) in this order: a
# service asking for it gets them all. A new business model is one resolver class and
# its line here (README: "Entitlements").
COLLECTIONS: Mapping[type, tuple[type, ...]] = {
    EntitlementResolvers: (TierResolver, ProductResolver, EnterpriseResolver, CreditResolver),
}

# A port every service gets through a wrapper: the wrapper is built once, with the
# adapter as its `inner` argument and the rest autowired.
DECORATORS: Mapping[type, type] = {
    # A commit that changed users forgets them in the user cache, so no use case can
    # leave a stale user behind.
    IdentityUnitOfWorkFactory: InvalidatingUnitOfWorkFactory,
    # Payment events change users' tiers in their own transaction: the same rule.
    PaymentsUnitOfWorkFactory: InvalidatingUnitOfWorkFactory,
}


# Ports the core can serve itself from other ports: used where the container selects
# no adapter (gives None), built like a service.
FALLBACKS: Mapping[type, type] = {
    # One round trip per store, any backends.
    CallerReader: SeparateCallerReader,
}


class Services:
    """Every port, policy and service of one process, by type, built once at startup."""

    def __init__(self, instances: Mapping[type, object]) -> None:
        self._instances = dict(instances)

    def get(self, kind: type[T]) -> T:
        """The one instance of `kind`; KeyError names a type nothing provides."""
        try:
            return cast(T, self._instances[kind])
        except KeyError:
            raise KeyError(f"nothing provides {kind.__name__}") from None

    def __contains__(self, kind: object) -> bool:
        return kind in self._instances

    def types(self) -> list[type]:
        return list(self._instances)


def build_services(
    ports: Mapping[type, object], policies: Mapping[type, object] | None = None
) -> Services:
    """Register the ports (decorated where `DECORATORS` says), the policies and every
    service in `SERVICES`, then resolve each once."""
    registry = punq.Container()
    policies = policies or {}
    for kind, instance in ports.items():
        decorator = DECORATORS.get(kind)
        if instance is None:
            registry.register(kind, factory=FALLBACKS[kind], scope=punq.Scope.singleton)
        elif decorator is None:
            registry.register(kind, instance=instance)
        else:
            registry.register(kind, factory=decorator, scope=punq.Scope.singleton, inner=instance)
    for kind, policy in policies.items():
        registry.register(kind, instance=policy)
    for collection, members in COLLECTIONS.items():
        for member in members:
            registry.register(member, scope=punq.Scope.singleton)
        registry.register(
            collection,
            factory=_collection(registry, collection, members),
            scope=punq.Scope.singleton,
        )
    for service in SERVICES:
        registry.register(service, scope=punq.Scope.singleton)
    resolved: dict[type, Any] = {}
    for kind in (*ports, *policies, *COLLECTIONS, *SERVICES):
        resolved[kind] = registry.resolve(kind)
    return Services(resolved)


def _collection(
    registry: punq.Container, collection: type, members: tuple[type, ...]
) -> Callable[[], object]:
    def build() -> object:
        return collection([registry.resolve(member) for member in members])

    return build
