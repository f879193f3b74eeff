"""What identity needs from the outside world."""

from __future__ import annotations

from abc import abstractmethod
from datetime import datetime
from typing import Protocol

from core.identity.model import BrowserSession, User
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
      users unless `include_deleted` is true. Email lookups are on the normalised email.
    - `update` writes every field of the user and refreshes `updated_at`; it raises
      `UserNotFoundError` when the id is unknown, and the same conflict errors as `add`.
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
    async def get_by_email(self, email: str, *, include_deleted: bool = False) -> User | None: ...

    @abstractmethod
    async def get_by_username(
        self, username: str, *, include_deleted: bool = False
    ) -> User | None: ...

    @abstractmethod
    async def update(self, user: User) -> User: ...

    @abstractmethod
    async def soft_delete(self, user_id: int, at: datetime) -> bool: ...

    @abstractmethod
    async def list(self, query: ListQuery) -> Page[User]: ...


class IdentityUnitOfWork(UnitOfWork, Protocol):
    """A transaction that can reach the identity repositories."""

    users: UserRepository


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
