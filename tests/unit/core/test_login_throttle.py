"""LoginThrottle: before hashing, per account and per address, never failing open."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.memory.clock import ManualClock
from adapters.memory.rate_limit import InMemoryRateLimiter
from adapters.memory.telemetry import InMemoryTelemetry
from core.identity.errors import InvalidCredentialsError, WrongPasswordError
from core.identity.model import Email
from core.identity.throttle import LoginThrottle, LoginThrottledError, LoginThrottlePolicy
from core.shared.context import ClientInfo
from tests.unavailable import UnreachableRateLimiter
from tests.unit.core.identity_world import World

PASSWORD = "correct horse battery staple"


def _throttle(
    clock: ManualClock, *, per_account: int = 2, per_address: int = 100
) -> tuple[LoginThrottle, InMemoryRateLimiter]:
    shared = InMemoryRateLimiter(clock)
    policy = LoginThrottlePolicy(
        per_account=per_account, per_address=per_address, window_seconds=60
    )
    return LoginThrottle(shared, InMemoryRateLimiter(clock), policy, InMemoryTelemetry()), shared


async def test_the_account_rule_ignores_case_and_spaces_and_resets_after_the_window() -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    throttle, _ = _throttle(clock)
    await throttle.check("ada@example.com", "192.0.2.1")
    await throttle.check(" ADA@example.com ", "192.0.2.2")
    with pytest.raises(LoginThrottledError) as refused:
        await throttle.check("ada@example.com", "192.0.2.3")
    assert 1 <= refused.value.retry_after <= 60
    await throttle.check("bob@example.com", "192.0.2.3")  # other accounts unaffected
    clock.advance(61)
    await throttle.check("ada@example.com", "192.0.2.1")


async def test_every_spelling_of_one_address_is_one_account() -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    throttle, _ = _throttle(clock, per_account=2)
    await throttle.check("Ada@X.org", None)
    await throttle.check(Email("ADA@x.org"), None)  # a user's `Email` keys the same
    with pytest.raises(LoginThrottledError):
        await throttle.check("ada@x.org ", None)
    await throttle.check("bob@x.org", None)  # control: another address, another account
    # Text that is no valid address is throttled too, folded the same way.
    await throttle.check("Not An Address", None)
    await throttle.check(" not an address", None)
    with pytest.raises(LoginThrottledError):
        await throttle.check("NOT AN ADDRESS ", None)


async def test_the_account_key_is_emails_own_normalisation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Were `Email` to keep case, the throttle must follow it, not fold case on its own.
    monkeypatch.setattr(Email, "normalise", staticmethod(lambda text: text.strip()))
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    throttle, _ = _throttle(clock, per_account=1)
    await throttle.check("Ada@X.org", None)
    await throttle.check("ada@x.org", None)  # another key now
    with pytest.raises(LoginThrottledError):
        await throttle.check(" Ada@X.org ", None)  # control: the same key is counted


async def test_the_address_rule_is_checked_first_and_spares_the_account() -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    throttle, _ = _throttle(clock, per_account=2, per_address=1)
    await throttle.check("ada@example.com", "192.0.2.1")
    with pytest.raises(LoginThrottledError):
        await throttle.check("ada@example.com", "192.0.2.1")
    # The refused attempt did not count against Ada: one more from elsewhere is allowed.
    await throttle.check("ada@example.com", "192.0.2.9")


async def test_a_store_that_is_down_falls_back_in_process_never_open() -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    down = UnreachableRateLimiter()
    throttle = LoginThrottle(
        down,
        InMemoryRateLimiter(clock),
        LoginThrottlePolicy(per_account=2, window_seconds=60),
        InMemoryTelemetry(),
    )
    await throttle.check("ada@example.com", None)
    await throttle.check("ada@example.com", None)
    with pytest.raises(LoginThrottledError):
        await throttle.check("ada@example.com", None)
    assert down.calls == 3  # the shared store is still tried first each time


async def test_throttled_sign_ins_cost_no_password_hash_and_look_alike() -> None:
    world = World()  # per_account=5 in the world's throttle
    await world.accounts.register("ada@example.com", "ada", PASSWORD)
    client = ClientInfo(ip="192.0.2.1")
    for email in ("ada@example.com", "nobody@example.com"):
        for _ in range(5):
            with pytest.raises(InvalidCredentialsError):
                await world.auth.login(email, "a wrong password!", client=client)
    verified: list[str] = []
    original = world.hasher.verify

    async def counting_verify(password_hash: str, password: str) -> bool:
        verified.append(password)
        return await original(password_hash, password)

    world.hasher.verify = counting_verify  # type: ignore[method-assign]
    errors = []
    for email in ("ada@example.com", "nobody@example.com"):
        with pytest.raises(LoginThrottledError) as refused:
            await world.auth.login(email, PASSWORD, client=client)
        errors.append((refused.value.code, refused.value.detail))
    assert verified == []  # refused before any hashing
    assert errors[0] == errors[1]


def test_policy_values_must_be_positive() -> None:
    with pytest.raises(ValueError):
        LoginThrottlePolicy(per_account=0)


async def test_password_confirmations_share_the_account_budget() -> None:
    world = World()  # per_account=5
    user = await world.accounts.register("ada@example.com", "ada", PASSWORD)
    assert user.id is not None
    await world.auth.login("ada@example.com", PASSWORD)  # 1
    for _ in range(3):  # 2..4
        with pytest.raises(WrongPasswordError):
            await world.accounts.change_password(user.id, "a wrong password!", "a new passphrase")
    with pytest.raises(WrongPasswordError):  # 5
        await world.accounts.delete_account(user.id, "a wrong password!")
    # The budget is spent: the right password is refused before any hashing, and a
    # password login to the account is throttled just the same.
    with pytest.raises(LoginThrottledError):
        await world.accounts.change_password(user.id, PASSWORD, "a new passphrase")
    with pytest.raises(LoginThrottledError):
        await world.accounts.delete_account(user.id, PASSWORD)
    with pytest.raises(LoginThrottledError):
        await world.auth.login("ADA@example.com", PASSWORD)
    assert (await world.accounts.get(user.id)).id == user.id  # still there
