"""Session lifetime and account-link rules, given to the services as values (from settings)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    idle_timeout_seconds: int = 30 * 60
    absolute_lifetime_seconds: int = 12 * 60 * 60
    # Recording activity costs a store write; once a minute keeps the idle clock honest
    # to within a minute without a write on every request.
    touch_interval_seconds: int = 60

    def __post_init__(self) -> None:
        if self.idle_timeout_seconds <= 0 or self.absolute_lifetime_seconds <= 0:
            raise ValueError("session timeouts must be positive")
        if self.touch_interval_seconds < 0:
            raise ValueError("touch interval must not be negative")


@dataclass(frozen=True, slots=True)
class AccountLinkPolicy:
    """Verification and password-reset links: where they point, how long they work.

    Links are `frontend_url + path + "?token=..."`: the front end reads the token and
    posts it to the API, so the API's own address never appears in mail.
    """

    frontend_url: str = "http://localhost:3000"
    verify_path: str = "/verify-email"
    reset_path: str = "/reset-password"
    verification_lifetime_seconds: int = 24 * 60 * 60
    reset_lifetime_seconds: int = 30 * 60
    # Requests for the same mail within one window are folded into one job, so a burst
    # of clicks (or a script) sends one mail, not fifty.
    request_window_seconds: int = 60

    def __post_init__(self) -> None:
        if not self.frontend_url.startswith(("http://", "https://")):
            raise ValueError("frontend_url must be an http(s) URL")
        for path in (self.verify_path, self.reset_path):
            if not path.startswith("/"):
                raise ValueError("link paths must start with '/'")
        if (
            min(
                self.verification_lifetime_seconds,
                self.reset_lifetime_seconds,
                self.request_window_seconds,
            )
            <= 0
        ):
            raise ValueError("token lifetimes and the request window must be positive")

    def verification_link(self, token: str) -> str:
        return self._link(self.verify_path, token)

    def reset_link(self, token: str) -> str:
        return self._link(self.reset_path, token)

    def _link(self, path: str, token: str) -> str:
        separator = "&" if "?" in path else "?"
        return f"{self.frontend_url.rstrip('/')}{path}{separator}{urlencode({'token': token})}"
