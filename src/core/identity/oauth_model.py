"""OAuth sign-in values: what a provider says about a person, and the links we keep."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

# Provider names appear in URLs, stored links and audit details: short, lower case.
_PROVIDER_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
MAX_SUBJECT_LENGTH = 255


def check_provider_name(name: str) -> str:
    if not _PROVIDER_NAME.match(name):
        raise ValueError(f"{name!r} is not a provider name (lower case, at most 32 characters)")
    return name


@dataclass(frozen=True, slots=True)
class ProviderIdentity:
    """Who the provider says signed in.

    `subject` is the provider's stable id of the account (GitHub's numeric user id,
    Google's `sub`): links are keyed on it, never on the email, which the person can
    change at the provider. `email_verified` is the provider vouching that the person
    controls `email`; without it the email proves nothing. `login` is the provider's
    handle (a hint for the username), `display_name` the person's name.
    """

    provider: str
    subject: str
    email: str | None
    email_verified: bool
    display_name: str | None = None
    login: str | None = None

    def __post_init__(self) -> None:
        check_provider_name(self.provider)
        if not self.subject or len(self.subject) > MAX_SUBJECT_LENGTH:
            raise ValueError("a provider subject has 1 to 255 characters")


@dataclass(slots=True)
class OAuthIdentity:
    """A provider account linked to one of our users. `id` is assigned by the store.

    `email` is the address the provider reported when the link was made (support and
    audit only: sign-in goes by `provider` and `subject`).
    """

    user_id: int
    provider: str
    subject: str
    created_at: datetime
    email: str | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class OAuthStart:
    """The start of a sign-in: send the browser to `url`; keep `state` and
    `code_verifier` (both secrets) until the provider redirects back, then hand them to
    `OAuthService.complete`. Never logged."""

    provider: str
    url: str
    state: str
    code_verifier: str

    def __repr__(self) -> str:  # the verifier and state must not reach a log by accident
        return f"OAuthStart(provider={self.provider!r})"
