"""Links in verification and reset mail, and the settings they come from."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.identity.policy import AccountLinkPolicy
from entrypoints.bootstrap.policies import account_links
from entrypoints.bootstrap.settings import Settings


def test_links_join_the_front_end_the_path_and_the_token() -> None:
    links = AccountLinkPolicy(frontend_url="https://app.example.com/", reset_path="/r?lang=en")
    assert links.verification_link("abc_-1") == "https://app.example.com/verify-email?token=abc_-1"
    assert links.reset_link("abc") == "https://app.example.com/r?lang=en&token=abc"


@pytest.mark.parametrize(
    "changes",
    [
        {"frontend_url": "javascript:alert(1)"},
        {"verify_path": "verify"},
        {"reset_lifetime_seconds": 0},
        {"request_window_seconds": -1},
    ],
)
def test_the_policy_refuses_nonsense(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        AccountLinkPolicy(**changes)  # type: ignore[arg-type]


def test_settings_reach_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTICO_ACCOUNTS__FRONTEND_URL", "https://app.example.com")
    monkeypatch.setenv("PORTICO_ACCOUNTS__RESET_PATH", "/account/reset")
    monkeypatch.setenv("PORTICO_ACCOUNTS__RESET_TOKEN_LIFETIME_SECONDS", "900")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    links = account_links(settings)
    assert links.reset_link("t") == "https://app.example.com/account/reset?token=t"
    assert links.reset_lifetime_seconds == 900
    assert links.verification_lifetime_seconds == 24 * 3600
    assert links.request_window_seconds == 60


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("frontend_url", "ftp://files.example.com"),
        ("frontend_url", "https://app.example.com/#frag"),
        ("verify_path", "no-slash"),
        ("reset_token_lifetime_seconds", 10),
    ],
)
def test_settings_refuse_bad_values(name: str, value: object) -> None:
    with pytest.raises(ValidationError):
        Settings(_env_file=None, accounts={name: value})  # type: ignore[call-arg,arg-type]
