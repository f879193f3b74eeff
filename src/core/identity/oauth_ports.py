"""What OAuth sign-in needs from the outside world: providers and a store of links."""

from __future__ import annotations

from abc import abstractmethod
from typing import Protocol

from core.identity.oauth_model import OAuthIdentity, ProviderIdentity


class OAuthProvider(Protocol):
    """One OAuth 2.0 / OpenID Connect provider, authorization code flow with PKCE (S256).

    Contract:
    - `name` is the provider's stable lower-case name (`github`, `google`): the one in
      URLs, in stored links and in every `ProviderIdentity` it returns.
    - `authorization_url(state, code_challenge)` is the provider page to send the
      browser to. It carries the client id, the adapter's redirect URI (our callback),
      the scopes it needs, `state`, `code_challenge` and `code_challenge_method=S256`.
      Pure: no I/O, cannot fail.
    - `exchange(code, code_verifier)` trades the code the provider redirected back with,
      the PKCE verifier and the same redirect URI for the identity of the person who
      signed in. A code, verifier, client or redirect URI the provider refuses, and an
      answer without a usable subject, raise `OAuthFailedError`. A provider that cannot
      be reached, times out, or answers 429 or 5xx raises
      `UnavailableError(dependency="oauth:<name>")`. Nothing else escapes (no driver
      exceptions). Every network call has a timeout.
    - `email_verified` is true only when the provider itself says the person controls
      `email`. Access tokens obtained on the way serve to read the identity only: never
      stored, never logged. Not idempotent: a code works once.
    """

    @property
    @abstractmethod
    def name(self) -> str: ...

    @abstractmethod
    def authorization_url(self, *, state: str, code_challenge: str) -> str: ...

    @abstractmethod
    async def exchange(self, *, code: str, code_verifier: str) -> ProviderIdentity: ...


class OAuthIdentityRepository(Protocol):
    """Stores the links between provider accounts and users. Used inside an
    `IdentityUnitOfWork`; nothing is durable before commit.

    Contract:
    - `add` assigns `id` and returns the stored link. `(provider, subject)` is unique,
      enforced by the store: a second link of one provider account raises
      `OAuthIdentityTakenError` at `add` or at commit, so of two concurrent first
      sign-ins at most one links. A link to a user id that does not exist raises
      `ConflictError` (a foreign key).
    - `get(provider, subject)` returns the link or None; it changes nothing.
    - `list_for_user` returns the user's links, oldest first.
    Driver failures raise `UnavailableError`.
    """

    @abstractmethod
    async def add(self, identity: OAuthIdentity) -> OAuthIdentity: ...

    @abstractmethod
    async def get(self, provider: str, subject: str) -> OAuthIdentity | None: ...

    @abstractmethod
    async def list_for_user(self, user_id: int) -> list[OAuthIdentity]: ...
