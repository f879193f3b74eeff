"""The core world (`identity_world.World`: every service wired as bootstrap wires it, on
in-memory ports) with billing's services at hand and the default catalog seeded."""

from __future__ import annotations

from typing import Any

from core.billing.catalog import CatalogService
from core.billing.credits import CreditService
from core.billing.entitlements import EntitlementService
from core.billing.plans import PlanService
from core.billing.ports import BillingUnitOfWorkFactory
from core.billing.reservations import ReservationService
from core.billing.seed import seed_catalog
from core.identity.model import User
from tests.unit.core.identity_world import PASSWORD, World


class BillingWorld(World):
    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.catalog = self.services.get(CatalogService)
        self.plans = self.services.get(PlanService)
        self.credits = self.services.get(CreditService)
        self.reservations = self.services.get(ReservationService)
        self.entitlements = self.services.get(EntitlementService)
        self.billing_uow = self.services.get(BillingUnitOfWorkFactory)

    async def seeded(self) -> BillingWorld:
        await seed_catalog(self.catalog)
        return self

    async def member(self, name: str = "ada") -> User:
        """A registered user, as the HTTP layer hands users to services."""
        user = await self.accounts.register(f"{name}@example.com", name, PASSWORD)
        assert user.id is not None
        fresh = await self.users.get(user.id)
        assert fresh is not None
        return fresh

    async def reload(self, user: User) -> User:
        assert user.id is not None
        fresh = await self.users.get(user.id)
        assert fresh is not None
        return fresh

    async def ledger_sum(self, user_id: int) -> int:
        async with self.billing_uow(read_only=True) as tx:
            return await tx.credits.total(user_id)
