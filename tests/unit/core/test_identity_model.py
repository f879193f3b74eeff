from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.identity.errors import InvalidEmailError, InvalidUsernameError, WeakPasswordError
from core.identity.model import BrowserSession, Email, User, Username
from core.identity.passwords import PasswordPolicy


def test_email_is_normalised_and_validated() -> None:
    assert Email("  Ada@Example.COM ").value == "ada@example.com"
    for bad in [
        "",
        "ada",
        "ada@",
        "@x.org",
        "a b@x.org",
        "ada@localhost",
        "a@@x.org",
        "x" * 250 + "@x.org",
    ]:
        with pytest.raises(InvalidEmailError):
            Email(bad)


def test_one_address_in_any_spelling_is_one_email() -> None:
    assert Email("  Ada@Example.COM ") == Email("ada@example.com")
    assert str(Email("  Ada@Example.COM ")) == "ada@example.com"
    assert Email("ada@example.com") != Email("ada@example.org")  # control
    # The value object, not its text: a plain string is never equal to an `Email`.
    assert Email("ada@example.com") != "ada@example.com"


def test_normalise_folds_any_text_without_judging_it() -> None:
    # What the throttle keys on: the same folding as `Email`, for text that is no address.
    assert Email.normalise("  Not An Address ") == "not an address"
    assert Email.normalise(" Ada@Example.COM ") == Email("ada@example.com").value
    with pytest.raises(InvalidEmailError):
        Email("  Not An Address ")  # control: as an `Email` it is refused


def test_stored_values_are_normalised_but_not_validated() -> None:
    # For rows written under other rules: they must load, folded like every email.
    assert Email.stored(" Root@LocalHost ") == Email.stored("root@localhost")
    assert str(Email.stored(" Root@LocalHost ")) == "root@localhost"
    assert Email.stored("Ada@Example.com") == Email("ada@example.com")
    assert str(Username.stored("x!")) == "x!"
    assert Username.stored("Ada") == Username("Ada") != Username("ada")
    with pytest.raises(InvalidEmailError):
        Email("root@localhost")  # control: the same text as new input is refused
    with pytest.raises(InvalidUsernameError):
        Username("x!")


def test_a_user_holds_the_value_objects_not_their_text() -> None:
    user = User(email=Email("ada@example.com"), username=Username("ada"), password_hash="h")
    assert user.copy(username=Username("countess")).username == Username("countess")  # control
    with pytest.raises(TypeError):
        User(email="ada@example.com", username=Username("ada"), password_hash="h")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        user.copy(username="countess")


def test_username_rules() -> None:
    assert Username("ada.lovelace_1").value == "ada.lovelace_1"
    for bad in ["ab", "_ada", "a" * 33, "ada lovelace", "ada<script>"]:
        with pytest.raises(InvalidUsernameError):
            Username(bad)


@pytest.mark.parametrize(
    "password",
    ["short", "password1234", "PASSWORD1234", "aaaaaaaaaaaaaaaa", "abababababab", "x" * 1025],
)
def test_weak_passwords_are_refused(password: str) -> None:
    with pytest.raises(WeakPasswordError):
        PasswordPolicy(min_length=12).check(password)


def test_password_equal_to_identity_is_refused_and_good_ones_pass() -> None:
    policy = PasswordPolicy(min_length=12)
    with pytest.raises(WeakPasswordError):
        policy.check("ada.lovelace99", username="ada.lovelace99")
    with pytest.raises(WeakPasswordError):
        policy.check("ada.lovelace99@example.com", email="ada.lovelace99@example.com")
    policy.check("correct horse battery staple")
    policy.check("ü" * 6 + "ß" * 6 + "€")  # non-ASCII counts by characters, not bytes


def _session(last_seen: datetime, expires: datetime) -> BrowserSession:
    return BrowserSession(
        token_hash="h",
        user_id=1,
        csrf_token="c",
        created_at=last_seen,
        last_seen_at=last_seen,
        expires_at=expires,
        idle_timeout_seconds=600,
    )


def test_session_expiry_is_the_earlier_of_idle_and_absolute() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    session = _session(now, now + timedelta(hours=12))
    assert session.ttl_seconds(now) == 600
    assert not session.is_expired(now + timedelta(seconds=599))
    assert session.is_expired(now + timedelta(seconds=600))
    short = _session(now, now + timedelta(seconds=30))
    assert short.ttl_seconds(now) == 30
    assert short.is_expired(now + timedelta(seconds=30))
    assert short.ttl_seconds(now + timedelta(hours=1)) == 1
