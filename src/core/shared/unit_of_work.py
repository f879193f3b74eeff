"""The unit-of-work port: one transaction over the repositories of a context."""

from __future__ import annotations

from abc import abstractmethod
from types import TracebackType
from typing import Protocol, Self


class UnitOfWork(Protocol):
    """One database transaction.

    Contract: used as `async with factory() as uow:`; changes made through its
    repositories become visible to others only after `await uow.commit()`. Leaving the
    block without commit (or with an exception) rolls everything back. A unit of work is
    used by one task at a time and not reused after it exits. Driver failures surface as
    `UnavailableError`; constraint violations as the context's `ConflictError` leaves.
    """

    @abstractmethod
    async def commit(self) -> None: ...

    @abstractmethod
    async def rollback(self) -> None: ...

    @abstractmethod
    async def __aenter__(self) -> Self: ...

    @abstractmethod
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
