"""What identity needs from the outside world."""

from __future__ import annotations

from abc import abstractmethod
from datetime import datetime
from typing import Protocol

from core.audit.ports import AuditLog
from core.identity.model import (
    AccessTokenClaims,
    BrowserSession,
    Email,
    OneTimeToken,
    RefreshToken,
    TokenPurpose,
    User,
    Username,
)
from core.identity.oauth_ports import OAuthIdentityRepository
from core.platform.jobs import JobQueue
from core.shared.query import ListQuery, Page
from core.shared.unit_of_work import UnitOfWork


class UserRepository(Protocol):
    """Stores users. Used inside an `IdentityUnitOfWork`; nothing is durable before commit.

    Contract:
    - `add` assigns `id`, `created_at` and `updated_at` and returns the stored user. It
      raises `EmailTakenError` / `UsernameTakenError` when the email or username belongs to
      another user, deleted or not (uniqueness is enforced by the store itself, so two
      concurrent registrations cannot both win).
    - `get`, `get_by_email` and `get_by_username` return None for unknown or soft-deleted
      users unless `include_deleted` is true. They take the value objects: `Email` is
      already normalised (so lookups are case-insensitive), usernames match exactly.
    - Stored users come back with `Email.stored` / `Username.stored`: a row is never
      refused for failing today's validation (it was accepted when it was written).
    - `update` writes every field of the user except `tokens_valid_after` and refreshes
      `updated_at`; it raises `UserNotFoundError` when the id is unknown, and the same
      conflict errors as `add`.
    - `end_tokens_before` moves `tokens_valid_after` forward to `at` (never back) and
      returns False when the user does not exist. Only it writes that field, so a
      concurrent `update` built from an older read can never bring ended tokens back.
    - Deactivated users (`deactivated_at` set) are users like any other here: found,
      listed, updated; refusing them is the services' business.
    - `lock` returns the user like `get` (None when deleted) and keeps other units of work from
      locking the user or ending its tokens until this one ends (a row lock), so token
      issuance and "end every token" happen one after the other. Write units only.
    - `soft_delete` sets `deleted_at`; it is idempotent and returns False when the user
      does not exist.
    - `list` applies the shared query vocabulary (filters, sort, offset or cursor).
    Driver failures raise `UnavailableError`.
    """

    @abstractmethod
    async def add(self, user: User) -> User: ...

    @abstractmethod
    async def get(self, user_id: int, *, include_deleted: bool = False) -> User | None: ...

    @abstractmethod
    async def get_by_email(self, email: Email, *, include_deleted: bool = False) -> User | None: ...

    @abstractmethod
    async def get_by_username(
        self, username: Username, *, include_deleted: bool = False
    ) -> User | None: ...

    @abstractmethod
    async def update(self, user: User) -> User: ...

    @abstractmethod
    async def soft_delete(self, user_id: int, at: datetime) -> bool: ...

    @abstractmethod
    async def list(self, query: ListQuery) -> Page[User]: ...

    @abstractmethod
    async def end_tokens_before(self, user_id: int, at: datetime) -> bool: ...

    @abstractmethod
    async def lock(self, user_id: int) -> User | None: ...


class OneTimeTokenRepository(Protocol):
    """Stores single-use tokens (email verification, password reset) by fingerprint.

    Used inside an `IdentityUnitOfWork`; nothing is durable before commit.

    Contract:
    - The raw token never reaches the store: `token_hash` (SHA-256 fingerprint) is the
      key, unique across purposes. `add` assigns `id` and returns the stored token; a
      duplicate hash raises `ConflictError`.
    - `find_usable` returns the token for a hash and purpose only while it is unused and
      `now < expires_at`; it changes nothing.
    - `consume` marks the token used at `now` and returns its user id, only if it is
      unused, unexpired and of that purpose (one conditional UPDATE). Otherwise it
      returns None and changes nothing. Of any number of concurrent consumers of one
      token, at most one gets the user id, once its transaction commits; a consumer whose
      transaction rolls back leaves the token usable.
    - `invalidate_for_user` marks every unused token of the user and purpose used at
      `now` and returns how many it ended.
    - `purge_expired` deletes tokens whose `expires_at <= now` (used or not) and returns
      how many went; usable tokens are never deleted.
    Driver failures raise `UnavailableError`.
    """

    @abstractmethod
    async def add(self, token: OneTimeToken) -> OneTimeToken: ...

    @abstractmethod
    async def find_usable(
        self, token_hash: str, purpose: TokenPurpose, now: datetime
    ) -> OneTimeToken | None: ...

    @abstractmethod
    async def consume(
        self, token_hash: str, purpose: TokenPurpose, now: datetime
    ) -> int | None: ...

    @abstractmethod
    async def invalidate_for_user(
        self, user_id: int, purpose: TokenPurpose, now: datetime
    ) -> int: ...

    @abstractmethod
    async def purge_expired(self, now: datetime) -> int: ...


class RefreshTokenRepository(Protocol):
    """Stores refresh tokens by fingerprint, in families (one family per sign-in).

    Used inside an `IdentityUnitOfWork`; nothing is durable before commit.

    Contract:
    - The raw token never reaches the store: `token_hash` (SHA-256 fingerprint) is the
      key. `add` assigns `id` and returns the stored token; a duplicate hash raises
      `ConflictError`.
    - `get` returns the token for a hash whatever its state (used, revoked, expired), or
      None when unknown or purged; it changes nothing.
    - `use` marks the token used at `now` and returns it, only if it is unused, not
      revoked and `now < expires_at` (one conditional UPDATE); otherwise it returns None
      and changes nothing. Of any number of concurrent users of one token, at most one
      gets it once its transaction commits; one whose transaction rolls back leaves the
      token usable.
    - `revoke_family` sets `revoked_at = now` on every token of the family not revoked
      yet (used or not) and returns how many; `revoke_all_for_user` does the same for
      every family of the user except `keep_family`.
    - `purge_expired` deletes tokens whose `expires_at <= now` (used, revoked or not) and
      returns how many went; usable tokens are never deleted.
    Driver failures raise `UnavailableError`.
    """

    @abstractmethod
    async def add(self, token: RefreshToken) -> RefreshToken: ...

    @abstractmethod
    async def get(self, token_hash: str) -> RefreshToken | None: ...

    @abstractmethod
    async def use(self, token_hash: str, now: datetime) -> RefreshToken | None: ...

    @abstractmethod
    async def revoke_family(self, family_id: str, now: datetime) -> int: ...

    @abstractmethod
    async def revoke_all_for_user(
        self, user_id: int, now: datetime, *, keep_family: str | None = None
    ) -> int: ...

    @abstractmethod
    async def purge_expired(self, now: datetime) -> int: ...


class IdentityUnitOfWork(UnitOfWork, Protocol):
    """A transaction that can reach the identity repositories.

    `audit`, `one_time_tokens`, `refresh_tokens` and `oauth_identities` write in the same
    transaction as `users`, so an audit entry, a consumed token or a provider link exists
    exactly when the change it goes with commits.
    """

    users: UserRepository
    audit: AuditLog
    one_time_tokens: OneTimeTokenRepository
    refresh_tokens: RefreshTokenRepository
    oauth_identities: OAuthIdentityRepository
    # Jobs enqueued here exist only if this transaction commits (the outbox).
    jobs: JobQueue


class IdentityUnitOfWorkFactory(Protocol):
    """Opens a new `IdentityUnitOfWork` per call.

    `read_only=True` promises that the unit will not write: stores may then skip write
    locks (SQLite takes its single write lock only for units that may write), so reads
    never queue behind each other.
    """

    @abstractmethod
    def __call__(self, *, read_only: bool = False) -> IdentityUnitOfWork: ...


class SessionStore(Protocol):
    """Keeps browser sessions, keyed by the SHA-256 fingerprint of the session token.

    Contract:
    - The raw token never reaches the store; `token_hash` is the only key.
    - `create` assigns a unique positive integer `id` (the public handle) and returns the
      session. Entries expire by themselves at the session's `ttl_seconds(now)`.
    - `get` returns the session for a hash, or None when unknown or already expired; it
      does not change `last_seen_at`.
    - `touch` records activity and pushes the entry's expiry to `ttl_seconds` from now; it
      does nothing for an unknown hash.
    - `delete` removes one session by hash; `delete_for_user` removes one by public id
      only if it belongs to that user (returns False otherwise); `delete_all_for_user`
      removes every session of a user except `keep_token_hash` and returns how many went.
    - `list_for_user` returns the user's live sessions, oldest first.
    - Every call is atomic on its own; none is transactional with the database.
    Store failures raise `UnavailableError`.
    """

    @abstractmethod
    async def create(self, session: BrowserSession, now: datetime) -> BrowserSession: ...

    @abstractmethod
    async def get(self, token_hash: str) -> BrowserSession | None: ...

    @abstractmethod
    async def touch(self, token_hash: str, last_seen_at: datetime, ttl_seconds: int) -> None: ...

    @abstractmethod
    async def delete(self, token_hash: str) -> bool: ...

    @abstractmethod
    async def delete_for_user(self, user_id: int, session_id: int) -> bool: ...

    @abstractmethod
    async def delete_all_for_user(
        self, user_id: int, *, keep_token_hash: str | None = None
    ) -> int: ...

    @abstractmethod
    async def list_for_user(self, user_id: int) -> list[BrowserSession]: ...

    @abstractmethod
    async def ping(self) -> None:
        """Raise `UnavailableError` when the store cannot be reached (readiness probe)."""


class PasswordHasher(Protocol):
    """Hashes and verifies passwords with a slow, salted, memory-hard function.

    Contract: `hash` never returns the same string twice for one password (random salt);
    `verify` returns False (never raises) for a wrong password or a malformed hash;
    `needs_rehash` is True when the hash was made with weaker parameters than the current
    ones. Hashing runs off the event loop and the number of concurrent hashes is bounded.
    """

    @abstractmethod
    async def hash(self, password: str) -> str: ...

    @abstractmethod
    async def verify(self, password_hash: str, password: str) -> bool: ...

    @abstractmethod
    def needs_rehash(self, password_hash: str) -> bool: ...


class AccessTokenCodec(Protocol):
    """Turns access-token claims into a bearer token and back; signs, never stores.

    Contract:
    - `issue` returns a token (URL-safe text) that `decode` of the same codec turns
      back into equal claims (times to the microsecond).
    - `decode` returns the claims only for a token this codec issued (same key,
      algorithm, issuer and audience) that is an access token and current at `now`
      (`AccessTokenClaims.is_current`, with the codec's leeway). Anything else raises
      `InvalidAccessTokenError` and nothing else: malformed text, no or another
      algorithm, another key, an altered payload, another audience or issuer, another
      token type, a missing claim, expired or not yet valid.
    - Pure computation, no I/O; safe to share between tasks and threads.
    """

    @abstractmethod
    def issue(self, claims: AccessTokenClaims) -> str: ...

    @abstractmethod
    def decode(self, token: str, now: datetime) -> AccessTokenClaims: ...
