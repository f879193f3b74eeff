"""What every repository of the in-memory unit of work does when the unit ends."""

from __future__ import annotations

from abc import ABC, abstractmethod


class PendingWrites(ABC):
    """A repository's changes, kept apart from the committed data until the unit ends.

    At commit the unit calls `_check` on every repository, then `_commit` on every one,
    under the database's lock and without awaiting, so a commit is atomic: a `_check`
    that raises (a unique constraint lost to a concurrent commit) applies nothing
    anywhere. `_rollback` discards the changes (and releases any lock the repository
    holds); it is also called after a failed commit.
    """

    def _check(self) -> None:  # noqa: B027  (most repositories have nothing to check)
        """Raise the conflict error a commit would hit; change nothing."""

    @abstractmethod
    def _commit(self) -> None: ...

    @abstractmethod
    def _rollback(self) -> None: ...
