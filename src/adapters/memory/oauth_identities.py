"""OAuth links in process memory, transactional like the SQL table."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from adapters.memory.transaction import PendingWrites
from core.identity.oauth_errors import OAuthIdentityTakenError
from core.identity.oauth_model import OAuthIdentity
from core.identity.oauth_ports import OAuthIdentityRepository
from core.shared.errors import ConflictError

UserExists = Callable[[int], Awaitable[bool]]


@dataclass
class InMemoryOAuthIdentityState:
    """The committed links every unit of work of one factory shares."""

    links: dict[int, OAuthIdentity] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


def _key(link: OAuthIdentity) -> tuple[str, str]:
    return link.provider, link.subject


class InMemoryOAuthIdentityRepository(OAuthIdentityRepository, PendingWrites):
    """`OAuthIdentityRepository` over an `InMemoryOAuthIdentityState` (contract: the port).

    Links stay pending until the unit of work commits. `(provider, subject)` is checked
    at `add` against what this transaction sees, and again at commit against what
    others committed meanwhile (`_check`, before anything is applied), as the unique
    constraint does in SQL. `user_exists` stands in for the foreign key.
    """

    def __init__(self, state: InMemoryOAuthIdentityState, user_exists: UserExists) -> None:
        self._state = state
        self._user_exists = user_exists
        self._added: dict[int, OAuthIdentity] = {}

    def _visible(self) -> list[OAuthIdentity]:
        return [*self._state.links.values(), *self._added.values()]

    async def add(self, identity: OAuthIdentity) -> OAuthIdentity:
        if not await self._user_exists(identity.user_id):
            raise ConflictError("The user of this link does not exist.")
        if any(_key(link) == _key(identity) for link in self._visible()):
            raise OAuthIdentityTakenError()
        stored = replace(identity, id=next(self._state.ids))
        assert stored.id is not None
        self._added[stored.id] = stored
        return replace(stored)

    async def get(self, provider: str, subject: str) -> OAuthIdentity | None:
        found = next((x for x in self._visible() if _key(x) == (provider, subject)), None)
        return replace(found) if found is not None else None

    async def list_for_user(self, user_id: int) -> list[OAuthIdentity]:
        links = [replace(link) for link in self._visible() if link.user_id == user_id]
        return sorted(links, key=lambda link: (link.created_at, link.id or 0))

    def _check(self) -> None:
        """Raise `OAuthIdentityTakenError` if a pending link lost to a committed one;
        the caller holds the state's lock and applies nothing when this raises."""
        committed = {_key(link) for link in self._state.links.values()}
        if any(_key(link) in committed for link in self._added.values()):
            raise OAuthIdentityTakenError()

    def _commit(self) -> None:
        self._state.links.update(self._added)
        self._added.clear()

    def _rollback(self) -> None:
        self._added.clear()
