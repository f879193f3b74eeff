"""Identity entities and value objects."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from core.identity.errors import InvalidEmailError, InvalidUsernameError

DEFAULT_TIER = "free"

# Python's whitespace (`str.isspace`, `\s` and `str.strip` agree on it), spelled out so the
# patterns below read the same in the OpenAPI document, where regex dialects differ on `\s`.
WHITESPACE = "\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# Deliberately simple: a local part, one "@", a dotted domain, no spaces. Deliverability
# is proven by the verification mail, not by a regex.
EMAIL_PATTERN = f"[^@{WHITESPACE}]{{1,64}}@[^@{WHITESPACE}.]+(\\.[^@{WHITESPACE}.]+)+"
EMAIL_MAX_LENGTH = 254  # of the normalised address
USERNAME_PATTERN = "[A-Za-z0-9][A-Za-z0-9_.-]{2,31}"
# Anchored with \Z: `$` would also match before a final newline ("ada\n").
_EMAIL = re.compile(f"^{EMAIL_PATTERN}\\Z")
_USERNAME = re.compile(f"^{USERNAME_PATTERN}\\Z")


@dataclass(frozen=True, slots=True)
class Email:
    """An email address, normalised to lower case so lookups are case-insensitive.

    The one place that normalises addresses (`normalise`). `Email(text)` validates what a
    person typed; `Email.stored(text)` rebuilds an address that was already accepted
    once (a row, a cache entry) without judging it again. Equal emails have equal
    values, and `str()` gives that value.
    """

    value: str

    def __post_init__(self) -> None:
        normalised = Email.normalise(self.value)
        if len(normalised) > EMAIL_MAX_LENGTH or not _EMAIL.match(normalised):
            raise InvalidEmailError(field="email")
        object.__setattr__(self, "value", normalised)

    @staticmethod
    def normalise(text: str) -> str:
        """The canonical form of any text offered as an address, valid or not: trimmed
        and lower case. For keys on what a client typed (the login throttle) that must
        match the stored form of the same address without refusing malformed input."""
        return text.strip().lower()

    @classmethod
    def stored(cls, text: str) -> Email:
        """An address read back from storage: normalised, never validated.

        A stored row was accepted under the rules of its day; a rule tightened later
        must not make an existing account unloadable. Repositories and the user cache
        rebuild with this, and nothing else should: new input goes through `Email()`.
        """
        email = object.__new__(cls)
        object.__setattr__(email, "value", cls.normalise(text))
        return email

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Username:
    """A username, kept exactly as chosen (usernames are unique case-sensitively).

    `Username(text)` validates; `Username.stored(text)` rebuilds a stored one without
    judging it again, for the same reason as `Email.stored`.
    """

    value: str

    def __post_init__(self) -> None:
        if not _USERNAME.match(self.value):
            raise InvalidUsernameError(field="username")

    @classmethod
    def stored(cls, text: str) -> Username:
        """A username read back from storage, as it was stored; never validated."""
        username = object.__new__(cls)
        object.__setattr__(username, "value", text)
        return username

    def __str__(self) -> str:
        return self.value


@dataclass(slots=True)
class User:
    """An account. `id` is None until the repository stores it."""

    email: Email
    username: Username
    password_hash: str
    id: int | None = None
    tier_code: str = DEFAULT_TIER
    is_superuser: bool = False
    email_verified: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None
    deleted_at: datetime | None = None
    # Set while an operator has deactivated the account (`UserAdministration`): it keeps
    # its data, but nobody can sign in to it or use a token of it until reactivated.
    deactivated_at: datetime | None = None
    # Access tokens issued before this instant are dead (logout-all, password change or
    # reset). Moved only by `UserRepository.end_tokens_before`, never by `update`.
    tokens_valid_after: datetime | None = None

    def __post_init__(self) -> None:
        # Text in place of the value objects would compare unequal to every `Email`
        # without a word (uniqueness, lookups): refuse it where it is made, copies too.
        if not isinstance(self.email, Email) or not isinstance(self.username, Username):
            raise TypeError("User needs an Email and a Username (stored text: Email.stored)")

    @property
    def is_active(self) -> bool:
        """Neither deleted nor deactivated: the only accounts that may sign in."""
        return self.deleted_at is None and self.deactivated_at is None

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    def accepts_token_issued_at(self, issued_at: datetime) -> bool:
        """False for a token issued before the user last ended every token."""
        return self.tokens_valid_after is None or issued_at >= self.tokens_valid_after

    def copy(self, **changes: object) -> User:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(slots=True)
class BrowserSession:
    """A server-side session. The store keys it by `token_hash`, never by the token.

    `id` is the public handle shown in session lists; it is assigned by the store.
    """

    token_hash: str
    user_id: int
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime  # absolute lifetime end
    idle_timeout_seconds: int
    ip: str | None = None
    user_agent: str | None = None
    id: int | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def idle_expires_at(self) -> datetime:
        return self.last_seen_at + timedelta(seconds=self.idle_timeout_seconds)

    def is_expired(self, now: datetime) -> bool:
        return now >= self.expires_at or now >= self.idle_expires_at()

    def ttl_seconds(self, now: datetime) -> int:
        """Seconds until the earlier of the idle and absolute expiry (at least 1)."""
        end = min(self.expires_at, self.idle_expires_at())
        return max(1, int((end - now).total_seconds()))


class TokenPurpose(StrEnum):
    """What a one-time token may be used for; a token is good for its purpose only."""

    EMAIL_VERIFICATION = "email_verification"
    PASSWORD_RESET = "password_reset"


@dataclass(slots=True)
class OneTimeToken:
    """A single-use token as the store keeps it: the fingerprint, never the token.

    Usable while `used_at` is None and `now < expires_at`. `id` is assigned by the store.
    """

    token_hash: str
    user_id: int
    purpose: TokenPurpose
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    id: int | None = None

    def is_usable(self, now: datetime) -> bool:
        return self.used_at is None and now < self.expires_at


@dataclass(slots=True)
class RefreshToken:
    """An opaque refresh token as the store keeps it: the fingerprint, never the token.

    Every sign-in starts a `family_id`; each refresh uses the presented token up and adds
    its successor to the same family. Usable while neither used nor revoked and
    `now < expires_at`. `id` is assigned by the store.
    """

    token_hash: str
    user_id: int
    family_id: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    revoked_at: datetime | None = None
    id: int | None = None

    def is_usable(self, now: datetime) -> bool:
        return self.used_at is None and self.revoked_at is None and now < self.expires_at


@dataclass(frozen=True, slots=True)
class AccessTokenClaims:
    """What a bearer access token says: whose it is, which sign-in, when it is valid.

    `subject` is the user id, `token_id` the token's unique id (`jti`), `family_id` the
    refresh-token family of the sign-in it came from. Times are aware UTC datetimes.
    """

    subject: int
    token_id: str
    family_id: str
    issued_at: datetime
    expires_at: datetime

    def is_current(self, now: datetime, leeway_seconds: float = 0) -> bool:
        """True from `issued_at` until `expires_at` (exclusive), each widened by the leeway."""
        leeway = timedelta(seconds=leeway_seconds)
        return self.issued_at - leeway <= now < self.expires_at + leeway
