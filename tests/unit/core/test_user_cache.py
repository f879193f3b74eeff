"""The cached per-request user read (`core.identity.user_cache`): the codec, hits that skip
the database, invalidation after every user-changing use case, the cache-aside race, and
a cache that is down. Every port in memory, time on a manual clock."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from adapters.memory.access_tokens import InMemoryAccessTokenCodec
from adapters.memory.telemetry import InMemoryTelemetry
from adapters.memory.users import InMemoryUserRepository
from core.identity.errors import InvalidAccessTokenError
from core.identity.model import Email, User, Username
from core.identity.ports import AccessTokenCodec, IdentityUnitOfWork, IdentityUnitOfWorkFactory
from core.identity.service import TokenPair
from core.identity.user_cache import (
    UNCACHED_PASSWORD_HASH,
    CachedUsers,
    UserCache,
    UserCachePolicy,
    decode_user,
    encode_user,
    generation_key,
    user_key,
)
from core.identity.user_invalidation import InvalidatingUnitOfWorkFactory
from core.platform.cache import Cache, JsonInput, JsonValue
from core.shared.errors import UnavailableError
from tests.unit.core.identity_world import NEW_PASSWORD, PASSWORD, World, token_in

RESET_SUBJECT = "Reset your"
VERIFY_SUBJECT = "Confirm your email"


class CacheWorld(World):
    """The identity world (services wired as bootstrap wires them), bearer tokens with
    an in-memory codec."""

    def __init__(self, cache: Cache | None = None) -> None:
        super().__init__(cache, ports={AccessTokenCodec: InMemoryAccessTokenCodec()})

    async def signed_up(self, name: str = "ada") -> int:
        user = await self.accounts.register(f"{name}@example.com", name, PASSWORD)
        assert user.id is not None
        return user.id

    async def sign_in(self, name: str = "ada", password: str = PASSWORD) -> TokenPair:
        return await self.api_tokens.issue_pair(f"{name}@example.com", password)

    async def bearer_works(self, pair: TokenPair) -> bool:
        try:
            await self.api_tokens.authenticate(pair.access_token)
        except InvalidAccessTokenError:
            return False
        return True

    async def cached(self, user_id: int) -> JsonValue:
        """The raw entry, current or not (None once expired or never stored)."""
        return await self.cache.get(user_key(user_id))


@pytest.fixture
def world() -> CacheWorld:
    return CacheWorld()


@pytest.fixture
def db_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The ids every `UserRepository.get` of the memory store was asked for."""
    calls: list[int] = []
    original = InMemoryUserRepository.get

    async def counting(self: InMemoryUserRepository, user_id: int, **kwargs: Any) -> User | None:
        calls.append(user_id)
        return await original(self, user_id, **kwargs)

    monkeypatch.setattr(InMemoryUserRepository, "get", counting)
    return calls


# --- the codec ----------------------------------------------------------------------------


def _every_field_set() -> User:
    return User(
        email=Email("ada@example.com"),
        username=Username("ada.l"),
        password_hash="$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
        id=42,
        tier_code="pro",
        is_superuser=True,
        email_verified=True,
        created_at=datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
        updated_at=datetime(
            2026, 2, 3, 4, 5, 6, 1, tzinfo=timezone(timedelta(hours=5, minutes=30))
        ),
        deleted_at=datetime(2026, 3, 4, 5, 6, 7, 999999, tzinfo=UTC),
        deactivated_at=datetime(2026, 3, 5, 1, 2, 3, 4, tzinfo=UTC),
        tokens_valid_after=datetime(2026, 4, 5, 6, 7, 8, 654321, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    "user",
    [
        pytest.param(_every_field_set(), id="every-field"),
        pytest.param(
            User(email=Email("bo@example.com"), username=Username("bob"), password_hash="h"),
            id="nones",
        ),
        pytest.param(
            User(
                email=Email("naive@example.com"),
                username=Username("naive"),
                password_hash="h",
                id=1,
                created_at=datetime(2026, 1, 1, 12, 0, 0, 5),
            ),
            id="naive-datetime",
        ),
        # Stored before today's rules (or through a provider): cached and read back as is.
        pytest.param(
            User(
                email=Email.stored("root@localhost"),
                username=Username.stored("x!"),
                password_hash="$argon2id$stored",
                id=7,
            ),
            id="stored-values-invalid-today",
        ),
    ],
)
def test_the_codec_round_trips_every_field_through_json_but_the_hash(user: User) -> None:
    document = json.loads(json.dumps(encode_user(user)))  # what every cache adapter returns
    decoded = decode_user(document)
    assert decoded == user.copy(password_hash=UNCACHED_PASSWORD_HASH)
    for field in dataclasses.fields(User):
        if field.name != "password_hash":
            value = getattr(decoded, field.name)
            assert value == getattr(user, field.name)
            if isinstance(value, datetime):
                assert value.utcoffset() == getattr(user, field.name).utcoffset()
    assert "password_hash" not in document and user.password_hash not in json.dumps(document)


def test_the_codec_covers_every_user_field() -> None:
    # A field added to User must be cached too (or the cached user would lose it).
    cached = set(encode_user(_every_field_set())) - {"layout"}
    assert cached == {f.name for f in dataclasses.fields(User)} - {"password_hash"}


@pytest.mark.parametrize(
    "change",
    [
        {"layout": 1},  # before `deactivated_at`
        {"id": "42"},
        {"id": True},
        {"email": None},
        {"is_superuser": 1},
        {"created_at": 1767225600},
        {"created_at": "yesterday"},
    ],
)
def test_the_codec_refuses_what_it_did_not_write(change: dict[str, object]) -> None:
    document = {**encode_user(_every_field_set()), **change}
    with pytest.raises((KeyError, TypeError, ValueError)):
        decode_user(document)  # type: ignore[arg-type]
    incomplete = encode_user(_every_field_set())
    del incomplete["tokens_valid_after"]
    with pytest.raises(KeyError):
        decode_user(incomplete)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        decode_user(["not", "an", "object"])


# --- hits and misses ----------------------------------------------------------------------


async def test_a_hit_skips_the_database_for_sessions_and_bearer_tokens(
    world: CacheWorld, db_reads: list[int]
) -> None:
    user_id = await world.signed_up()
    login = await world.auth.login("ada@example.com", PASSWORD)
    pair = await world.sign_in()
    db_reads.clear()

    for _ in range(5):
        found = await world.auth.authenticate(login.token)
        assert found is not None and found.user.id == user_id
        assert await world.bearer_works(pair)
    assert db_reads == [user_id]  # one load, then hits only


async def test_hit_and_miss_return_the_same_user_without_the_hash(world: CacheWorld) -> None:
    user_id = await world.signed_up()
    login = await world.auth.login("ada@example.com", PASSWORD)
    missed = await world.auth.authenticate(login.token)
    hit = await world.auth.authenticate(login.token)
    assert missed is not None and hit is not None and missed.user == hit.user
    stored = await world.accounts.get(user_id)
    assert hit.user == stored.copy(password_hash=UNCACHED_PASSWORD_HASH)
    assert "$" not in json.dumps(await world.cached(user_id))


async def test_entries_expire_after_the_ttl(world: CacheWorld, db_reads: list[int]) -> None:
    user_id = await world.signed_up()
    await world.users.get(user_id)
    world.clock.advance(world.users.cache.ttl_seconds - 0.001)
    await world.users.get(user_id)
    assert db_reads == [user_id]
    world.clock.advance(0.001)
    await world.users.get(user_id)
    assert db_reads == [user_id, user_id]


async def test_unknown_and_deleted_users_are_never_cached(
    world: CacheWorld, db_reads: list[int]
) -> None:
    assert await world.users.get(999) is None
    assert await world.users.get(999) is None
    assert db_reads == [999, 999] and await world.cached(999) is None

    user_id = await world.signed_up()
    async with world.store() as tx:  # behind the cache's back: no invalidation
        await tx.users.soft_delete(user_id, world.clock.now())
        await tx.commit()
    db_reads.clear()
    assert await world.users.get(user_id) is None
    assert await world.users.get(user_id) is None
    assert db_reads == [user_id, user_id]


async def test_a_lost_generation_or_a_bad_entry_is_a_miss(
    world: CacheWorld, db_reads: list[int]
) -> None:
    user_id = await world.signed_up()
    await world.users.get(user_id)
    await world.cache.delete(generation_key(user_id))  # evicted
    assert (await world.users.get(user_id)) is not None
    generation = await world.cache.get(generation_key(user_id))
    await world.cache.set(user_key(user_id), {"generation": generation, "user": {"x": 1}}, 30)
    assert (await world.users.get(user_id)) is not None  # undecodable: reloaded
    assert await world.users.get(user_id) is not None  # and stored again
    assert db_reads == [user_id, user_id, user_id]


# --- invalidation after each user-changing use case ---------------------------------------


async def _cached_bearer(world: CacheWorld) -> tuple[int, TokenPair]:
    """A user whose access token works and whose record is cached."""
    user_id = await world.signed_up()
    pair = await world.sign_in()
    assert await world.bearer_works(pair)
    assert await world.cached(user_id) is not None
    world.clock.advance(0.001)  # the change happens after the token was issued
    return user_id, pair


async def _still_stored(world: CacheWorld, user_id: int) -> None:
    # The old entry is still in the cache (not expired): refusal comes from invalidation.
    assert await world.cached(user_id) is not None


async def test_logout_all_refuses_earlier_access_tokens_at_once(world: CacheWorld) -> None:
    user_id, pair = await _cached_bearer(world)
    await world.auth.logout_all(user_id)
    await _still_stored(world, user_id)
    assert not await world.bearer_works(pair)
    assert await world.bearer_works(await world.sign_in())  # a new sign-in works


async def test_logout_all_keeping_a_family_still_ends_its_access_tokens(
    world: CacheWorld,
) -> None:
    user_id, pair = await _cached_bearer(world)
    family = (await world.api_tokens.authenticate(pair.access_token)).claims.family_id
    await world.auth.logout_all(user_id, keep_token_family=family)
    assert not await world.bearer_works(pair)


async def test_password_change_refuses_earlier_access_tokens_at_once(world: CacheWorld) -> None:
    user_id, pair = await _cached_bearer(world)
    await world.accounts.change_password(user_id, PASSWORD, NEW_PASSWORD)
    await _still_stored(world, user_id)
    assert not await world.bearer_works(pair)
    assert await world.bearer_works(await world.sign_in(password=NEW_PASSWORD))


async def test_password_reset_refuses_earlier_access_tokens_at_once(world: CacheWorld) -> None:
    user_id, pair = await _cached_bearer(world)
    await world.reset.request_password_reset("ada@example.com")
    await world.run_jobs()
    (mail,) = world.mails("ada@example.com", RESET_SUBJECT)
    await world.reset.reset_password(token_in(mail), NEW_PASSWORD)
    await _still_stored(world, user_id)
    assert not await world.bearer_works(pair)


async def test_account_deletion_refuses_sessions_and_tokens(world: CacheWorld) -> None:
    user_id, pair = await _cached_bearer(world)
    login = await world.auth.login("ada@example.com", PASSWORD)
    assert await world.auth.authenticate(login.token) is not None
    await world.accounts.delete_account(user_id, PASSWORD)
    await _still_stored(world, user_id)
    assert await world.auth.authenticate(login.token) is None
    assert not await world.bearer_works(pair)


async def test_a_deleted_users_surviving_session_is_refused(world: CacheWorld) -> None:
    # A deletion committed through the services' unit of work, sessions left alone:
    # only the cache invalidation can refuse the session.
    user_id = await world.signed_up()
    login = await world.auth.login("ada@example.com", PASSWORD)
    assert await world.auth.authenticate(login.token) is not None
    async with world.uow() as tx:
        await tx.users.soft_delete(user_id, world.clock.now())
        await tx.commit()
    assert await world.auth.authenticate(login.token) is None


async def test_profile_update_shows_at_once(world: CacheWorld) -> None:
    user_id, pair = await _cached_bearer(world)
    login = await world.auth.login("ada@example.com", PASSWORD)
    assert (await world.auth.authenticate(login.token)).user.username == Username("ada")  # type: ignore[union-attr]
    await world.accounts.update_profile(user_id, username="ada.lovelace")
    await _still_stored(world, user_id)
    assert (await world.auth.authenticate(login.token)).user.username == Username("ada.lovelace")  # type: ignore[union-attr]
    bearer = await world.api_tokens.authenticate(pair.access_token)
    assert bearer.user.username == Username("ada.lovelace")


async def test_email_verification_shows_at_once(world: CacheWorld) -> None:
    user_id, pair = await _cached_bearer(world)
    assert not (await world.api_tokens.authenticate(pair.access_token)).user.email_verified
    await world.verification.request_email_verification(user_id)
    await world.run_jobs()
    (mail,) = world.mails("ada@example.com", VERIFY_SUBJECT)
    await world.verification.confirm_email(token_in(mail))
    assert (await world.api_tokens.authenticate(pair.access_token)).user.email_verified


class RecordingUsers(UserCache):
    def __init__(self, world: World) -> None:
        policy = UserCachePolicy(world.users.cache.ttl_seconds)
        super().__init__(world.cache, policy, InMemoryTelemetry())
        self.forgotten: list[int] = []

    async def forget(self, user_id: int) -> None:
        self.forgotten.append(user_id)
        await super().forget(user_id)


async def test_every_user_write_is_forgotten_after_commit_only(world: CacheWorld) -> None:
    users = RecordingUsers(world)
    factory = InvalidatingUnitOfWorkFactory(world.store, users)
    a = await world.signed_up("ada")
    b = await world.signed_up("bob")
    c = await world.signed_up("cyd")

    async with factory() as tx:
        await tx.users.lock(a)  # reads and locks change nothing
        await tx.users.get(b)
        user = await tx.users.get(a)
        assert user is not None
        await tx.users.update(user.copy(username=Username("ada2")))
        await tx.users.end_tokens_before(b, world.clock.now())
        await tx.users.soft_delete(c, world.clock.now())
        assert users.forgotten == []  # nothing before commit
        await tx.commit()
    assert users.forgotten == sorted([a, b, c])

    users.forgotten.clear()
    async with factory() as tx:  # rolled back (no commit): nothing to forget
        await tx.users.end_tokens_before(a, world.clock.now())
    with pytest.raises(RuntimeError):
        async with factory() as tx:
            await tx.users.end_tokens_before(a, world.clock.now())
            raise RuntimeError("boom")
    async with factory() as tx:
        await tx.users.end_tokens_before(a, world.clock.now())
        await tx.rollback()
        await tx.commit()
    assert users.forgotten == []

    async with factory() as tx:  # a new account is forgotten too (no stale entry ever)
        added = await tx.users.add(
            User(email=Email("dee@example.com"), username=Username("dee"), password_hash="h")
        )
        await tx.commit()
    assert users.forgotten == [added.id]
    # Read-only units are the store's own (they promise not to write).
    assert type(factory(read_only=True)) is type(world.store(read_only=True))


async def test_a_rehash_at_login_forgets_the_user(world: CacheWorld) -> None:
    user_id = await world.signed_up()
    await world.users.get(user_id)
    before = await world.cache.get(generation_key(user_id))
    world.hasher.version = 2  # stored hashes now need a rehash
    await world.auth.login("ada@example.com", PASSWORD)
    assert await world.cache.get(generation_key(user_id)) not in (None, before)


# --- the cache-aside race -----------------------------------------------------------------


class PausingStore(IdentityUnitOfWorkFactory):
    """The store, but a read-only `users.get` waits for `release` after reading."""

    def __init__(self, inner: IdentityUnitOfWorkFactory) -> None:
        self.inner = inner
        self.read_done = asyncio.Event()
        self.release = asyncio.Event()

    def __call__(self, *, read_only: bool = False) -> IdentityUnitOfWork:
        unit = self.inner(read_only=read_only)
        if read_only:
            original = unit.users.get

            async def get(user_id: int, **kwargs: Any) -> User | None:
                found = await original(user_id, **kwargs)
                self.read_done.set()
                await self.release.wait()
                return found

            unit.users.get = get  # type: ignore[method-assign]
        return unit


async def test_a_load_racing_a_change_never_leaves_a_stale_entry(world: CacheWorld) -> None:
    user_id = await world.signed_up()
    pausing = PausingStore(world.store)
    reader = CachedUsers(pausing, world.users.cache)  # same cache and keys as the services'

    slow = asyncio.create_task(reader.get(user_id))  # a miss: loads the old user...
    await asyncio.wait_for(pausing.read_done.wait(), 5)
    await world.accounts.update_profile(user_id, username="renamed")  # ...commit, forget...
    pausing.release.set()
    old = await slow  # ...and stores it after the forget
    assert old is not None and old.username == Username("ada")

    fresh = await world.users.get(user_id)
    assert fresh is not None and fresh.username == Username("renamed")


class CountingStore(PausingStore):
    """A pausing store that counts the read-only loads of users."""

    def __init__(self, inner: IdentityUnitOfWorkFactory) -> None:
        super().__init__(inner)
        self.loads = 0

    def __call__(self, *, read_only: bool = False) -> IdentityUnitOfWork:
        if read_only:
            self.loads += 1
        return super().__call__(read_only=read_only)


async def test_concurrent_misses_share_one_load(world: CacheWorld) -> None:
    user_id = await world.signed_up()
    await world.users.get(user_id)  # a generation exists; the entry is then dropped
    await world.cache.delete(user_key(user_id))
    counting = CountingStore(world.store)
    reader = CachedUsers(counting, world.users.cache)

    burst = [asyncio.create_task(reader.get(user_id)) for _ in range(20)]
    await asyncio.wait_for(counting.read_done.wait(), 5)
    counting.release.set()
    users = await asyncio.gather(*burst)
    assert counting.loads == 1  # one query for the whole burst
    assert all(u is not None and u.id == user_id for u in users)
    assert reader._loading == {}  # nothing left behind


async def test_a_reader_after_a_change_never_joins_a_load_begun_before_it(
    world: CacheWorld,
) -> None:
    user_id = await world.signed_up()
    await world.users.get(user_id)
    await world.cache.delete(user_key(user_id))
    pausing = CountingStore(world.store)
    reader = CachedUsers(pausing, world.users.cache)

    early = asyncio.create_task(reader.get(user_id))  # loads the old user and waits
    await asyncio.wait_for(pausing.read_done.wait(), 5)
    await world.accounts.update_profile(user_id, username="renamed")  # new generation
    late = asyncio.create_task(reader.get(user_id))
    for _ in range(100):  # let it read the cache and start (or join) a load
        await asyncio.sleep(0)
    assert pausing.loads == 2  # its own load: the early one is of another generation
    pausing.release.set()
    old, new = await asyncio.gather(early, late)
    assert old is not None and old.username == Username("ada")
    assert new is not None and new.username == Username("renamed")


async def test_a_reader_giving_up_does_not_cancel_the_shared_load(world: CacheWorld) -> None:
    user_id = await world.signed_up()
    await world.users.get(user_id)
    await world.cache.delete(user_key(user_id))
    pausing = CountingStore(world.store)
    reader = CachedUsers(pausing, world.users.cache)
    impatient = asyncio.create_task(reader.get(user_id))
    await asyncio.wait_for(pausing.read_done.wait(), 5)
    patient = asyncio.create_task(reader.get(user_id))
    for _ in range(100):  # let it join the load in flight
        await asyncio.sleep(0)
    impatient.cancel()
    pausing.release.set()
    user = await patient
    assert user is not None and user.id == user_id and pausing.loads == 1
    assert impatient.cancelled()


# --- a cache that is down -----------------------------------------------------------------


class DownCache(Cache):
    """Every call fails the way a real adapter fails when its server is unreachable."""

    def __init__(self) -> None:
        self.calls = 0

    def _down(self) -> UnavailableError:
        self.calls += 1
        return UnavailableError("cache down", dependency="cache")

    async def get(self, key: str) -> JsonValue:
        raise self._down()

    async def get_many(self, keys: Iterable[str]) -> dict[str, JsonValue]:
        raise self._down()

    async def set(
        self, key: str, value: JsonInput, ttl_seconds: int, *, tags: Iterable[str] = ()
    ) -> None:
        raise self._down()

    async def delete(self, key: str) -> None:
        raise self._down()

    async def incr(self, key: str, amount: int = 1, ttl_seconds: int | None = None) -> int:
        raise self._down()

    async def invalidate_tag(self, tag: str) -> None:
        raise self._down()

    async def ping(self) -> None:
        raise self._down()


async def test_a_cache_that_is_down_costs_no_request_and_no_write(
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = DownCache()
    world = CacheWorld(down)
    caplog.set_level(logging.WARNING, logger="core.identity.user_cache")
    user_id = await world.signed_up()  # a write that forgets: still succeeds
    login = await world.auth.login("ada@example.com", PASSWORD)
    pair = await world.sign_in()
    world.clock.advance(0.001)

    found = await world.auth.authenticate(login.token)
    assert found is not None and found.user.id == user_id
    assert await world.bearer_works(pair)

    await world.accounts.update_profile(user_id, username="renamed")
    found = await world.auth.authenticate(login.token)
    assert found is not None and found.user.username == Username("renamed")
    await world.auth.logout_all(user_id, keep_token=login.token)
    assert not await world.bearer_works(pair)
    await world.accounts.change_password(
        user_id, PASSWORD, NEW_PASSWORD, keep_session_token=login.token
    )
    await world.accounts.delete_account(user_id, NEW_PASSWORD)
    assert await world.auth.authenticate(login.token) is None

    assert down.calls > 0
    assert any("cache unavailable" in r.getMessage() for r in caplog.records)
