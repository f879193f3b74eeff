"""The entitlement service: every business check as one call.

`can_use(user, feature)`, `check_limit(user, name, amount)`, `consume(user, name,
amount)` and `entitlements(user)` answer from the resolvers' fold (`resolvers.py`):
what the user's tier, products and enterprise override grant (cached per user, one
cache round trip when warm), plus live facts such as the credit balance (read from the
database whenever `entitlements` is asked for). Limits count usage per calendar period
in `UsageCounters`, exactly (a conditional increment).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from core.billing.errors import FeatureNotInTierError, LimitReachedError
from core.billing.model import Entitlements, LimitSpec, LimitUsage, Period
from core.billing.ports import BillingUnitOfWork, BillingUnitOfWorkFactory
from core.billing.resolvers import EntitlementResolvers
from core.identity.model import User
from core.platform.cache import Cache, JsonInput, JsonValue
from core.platform.telemetry import Telemetry
from core.platform.versioned_cache import VersionedCache
from core.shared.clock import Clock
from core.shared.errors import DomainError

CATALOG_VERSION_KEY = "billing:catalog:version"
CACHE_NAME = "entitlements"  # in `portico_cache_requests_total`


def user_version_key(user_id: int) -> str:
    return f"billing:user:{user_id}:version"


def entitlements_key(user_id: int) -> str:
    return f"billing:entitlements:{user_id}"


@dataclass(frozen=True, slots=True)
class BillingPolicy:
    """`upgrade_url` goes into every refusal (where to buy more); entitlements are
    cached `entitlements_ttl_seconds` at most (a change forgets them at once)."""

    upgrade_url: str | None = None
    entitlements_ttl_seconds: int = 300


class EntitlementCache:
    """Cached entitlements (without the live facts) per user, forgotten per user
    (`forget_user`: a purchase, an override, a tier change) or for everyone
    (`forget_catalog`: a tier or product definition changed)."""

    def __init__(self, cache: Cache, policy: BillingPolicy, telemetry: Telemetry) -> None:
        self.entries = VersionedCache(cache, policy.entitlements_ttl_seconds, telemetry, CACHE_NAME)

    async def forget_user(self, user_id: int) -> None:
        await self.entries.bump(user_version_key(user_id))

    async def forget_catalog(self) -> None:
        await self.entries.bump(CATALOG_VERSION_KEY)


class EntitlementService:
    """Rules:
    - Features and limits are the fold of the cacheable resolvers, for the user's tier
      (`User.tier_code`, which identity keeps and billing sets).
    - `can_use` refuses with `FeatureNotInTierError`; `check_limit` and `consume`
      with `LimitReachedError` (limit, what remains, when the period resets); a limit
      the user has no entry for is a limit of 0. Refusals carry the upgrade URL.
    - `consume` counts only what fits (a conditional increment in the database), so
      concurrent calls never pass the limit.
    """

    def __init__(
        self,
        uow: BillingUnitOfWorkFactory,
        resolvers: EntitlementResolvers,
        cache: EntitlementCache,
        clock: Clock,
        policy: BillingPolicy,
    ) -> None:
        self._uow = uow
        self._resolvers = resolvers
        self._cache = cache
        self._clock = clock
        self._policy = policy

    async def entitlements(self, user: User) -> Entitlements:
        """Everything the user is entitled to, live facts (the credit balance) included."""
        granted = await self.granted(user)
        if not self._resolvers.live:
            return granted
        now = self._clock.now()
        async with self._uow(read_only=True) as tx:
            for resolver in self._resolvers.live:
                granted = await resolver.resolve(granted, tx, now)
        return granted

    async def can_use(self, user: User, feature: str) -> None:
        """Return if the user may use `feature`; else `FeatureNotInTierError`."""
        if feature not in (await self.granted(user)).features:
            raise FeatureNotInTierError(feature, upgrade_hint=self._policy.upgrade_url)

    async def admit(
        self,
        user: User,
        *,
        features: Sequence[str] = (),
        limits: Mapping[str, int] | None = None,
    ) -> Entitlements:
        """`can_use` for each of `features`, then `check_limit` for each of `limits`
        (name: amount), in that order, with one cache read and one transaction; returns
        the entitlements (for a `consume` that follows)."""
        granted = await self.granted(user)
        self._check_features(granted, features)
        if limits:
            async with self._uow(read_only=True) as tx:
                await self._check_limits(tx, granted, limits)
        return granted

    async def admit_in(
        self,
        tx: BillingUnitOfWork,
        granted: Entitlements,
        *,
        features: Sequence[str] = (),
        limits: Mapping[str, int] | None = None,
    ) -> None:
        """`admit` inside the caller's unit, against `granted` (from `granted`)."""
        self._check_features(granted, features)
        if limits:
            await self._check_limits(tx, granted, limits)

    def _check_features(self, granted: Entitlements, features: Sequence[str]) -> None:
        for feature in features:
            if feature not in granted.features:
                raise FeatureNotInTierError(feature, upgrade_hint=self._policy.upgrade_url)

    async def _check_limits(
        self, tx: BillingUnitOfWork, granted: Entitlements, limits: Mapping[str, int]
    ) -> None:
        now = self._clock.now()
        specs = {name: granted.limits.get(name, LimitSpec(0)) for name in limits}
        periods = {name: spec.period.start(now) for name, spec in specs.items()}
        used = await tx.usage.used_in(granted.user_id, periods)
        for name, amount in limits.items():
            usage = self._usage(name, specs[name], used.get(name, 0), now)
            if usage.used + amount > specs[name].amount:
                raise self._refusal(usage)

    async def check_limit(self, user: User, name: str, amount: int = 1) -> LimitUsage:
        """The limit as it stands if `amount` more fits; else `LimitReachedError`."""
        spec = (await self.granted(user)).limits.get(name, LimitSpec(0))
        now = self._clock.now()
        start = spec.period.start(now)
        async with self._uow(read_only=True) as tx:
            used = await tx.usage.used(_id(user), name, start)
        usage = self._usage(name, spec, used, now)
        if used + amount > spec.amount:
            raise self._refusal(usage)
        return usage

    async def consume(
        self, user: User, name: str, amount: int = 1, *, granted: Entitlements | None = None
    ) -> LimitUsage:
        """Count `amount` against the limit if it fits; else `LimitReachedError` and
        nothing counted. `granted`: the user's entitlements when the caller has them
        (from `admit`), saving a cache read."""
        if granted is None or granted.user_id != _id(user):
            granted = await self.granted(user)
        async with self._uow() as tx:
            usage = await self.consume_in(tx, granted, name, amount)
            await tx.commit()
        return usage

    async def consume_in(
        self, tx: BillingUnitOfWork, granted: Entitlements, name: str, amount: int = 1
    ) -> LimitUsage:
        """`consume` inside the caller's unit, against `granted`. A refusal counts
        nothing and leaves the unit usable (the caller may commit the rest)."""
        spec = granted.limits.get(name, LimitSpec(0))
        now = self._clock.now()
        start = spec.period.start(now)
        used = await tx.usage.consume(granted.user_id, name, start, amount, spec.amount)
        if used is None:
            current = await tx.usage.used(granted.user_id, name, start)
            raise self._refusal(self._usage(name, spec, current, now))
        return self._usage(name, spec, used, now)

    async def usage(self, user: User) -> list[LimitUsage]:
        """Every limit of the user with what was used in its current period."""
        return (await self.overview(user))[1]

    async def overview(self, user: User) -> tuple[Entitlements, list[LimitUsage]]:
        """`entitlements(user)` and `usage(user)` together: one cache read, one
        transaction, one read of all the counters."""
        granted = await self.granted(user)
        now = self._clock.now()
        limits = sorted(granted.limits.items())
        periods = {name: spec.period.start(now) for name, spec in limits}
        async with self._uow(read_only=True) as tx:
            for resolver in self._resolvers.live:
                granted = await resolver.resolve(granted, tx, now)
            used = await tx.usage.used_in(_id(user), periods) if periods else {}
        return granted, [self._usage(name, spec, used[name], now) for name, spec in limits]

    async def forget(self, user_id: int) -> None:
        """After a change to what the user is entitled to (purchases, overrides)."""
        await self._cache.forget_user(user_id)

    async def granted(self, user: User) -> Entitlements:
        """The user's features and limits (cached; no live facts): what `admit_in` and
        `consume_in` check against, read before the caller's unit opens."""
        user_id = _id(user)
        cached = await self._cache.entries.read(
            entitlements_key(user_id), (CATALOG_VERSION_KEY, user_version_key(user_id))
        )
        if cached.hit:
            decoded = _decode(user_id, cached.value)
            if decoded is not None and decoded.tier == user.tier_code:
                return decoded
        granted = Entitlements(user_id=user_id, tier=user.tier_code)
        now = self._clock.now()
        async with self._uow(read_only=True) as tx:
            for resolver in self._resolvers.cacheable:
                granted = await resolver.resolve(granted, tx, now)
        if cached.versions is not None:
            await self._cache.entries.store(
                entitlements_key(user_id), _encode(granted), cached.versions
            )
        return granted

    def _usage(self, name: str, spec: LimitSpec, used: int, now: datetime) -> LimitUsage:
        return LimitUsage(name, spec.amount, used, spec.period, spec.period.end(now))

    def _refusal(self, usage: LimitUsage) -> LimitReachedError:
        return LimitReachedError(
            usage.name,
            limit=usage.limit,
            remaining=usage.remaining,
            resets_at=usage.resets_at.isoformat(),
            upgrade_hint=self._policy.upgrade_url,
        )


def _id(user: User) -> int:
    if user.id is None:
        raise ValueError("entitlements are for stored users")
    return user.id


def _encode(granted: Entitlements) -> dict[str, JsonInput]:
    return {
        "tier": granted.tier,
        "features": sorted(granted.features),
        "limits": {name: [spec.amount, spec.period.value] for name, spec in granted.limits.items()},
    }


def _decode(user_id: int, value: JsonValue) -> Entitlements | None:
    """The cached fold, or None when it does not decode (it is then rebuilt)."""
    if not isinstance(value, dict):
        return None
    tier, features, limits = value.get("tier"), value.get("features"), value.get("limits")
    if not isinstance(tier, str) or not isinstance(features, list):
        return None
    if not isinstance(limits, dict):
        return None
    decoded: dict[str, LimitSpec] = {}
    for name, pair in limits.items():
        if not isinstance(pair, list) or len(pair) != 2:
            return None
        amount, period = pair
        if not isinstance(amount, int) or not isinstance(period, str):
            return None
        try:
            decoded[name] = LimitSpec(amount, Period(period))
        except (ValueError, DomainError):
            return None
    try:
        return Entitlements(
            user_id=user_id,
            tier=tier,
            features=frozenset(str(f) for f in features),
            limits=decoded,
        )
    except (ValueError, DomainError):
        return None
