"""Schema migrations for the configured database (the CLI's `portico db ...`).

Failures come out as two kinds: `UnavailableError` when the database cannot be reached,
`MigrationError` for anything the migrations themselves refuse (an unknown revision, a
failing step), each with a message fit for an operator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from adapters.sqlalchemy import migrations
from core.shared.errors import UnavailableError
from entrypoints.bootstrap.settings import Settings

T = TypeVar("T")


class MigrationError(Exception):
    """A migration command the migrations refused, or a step that failed."""


@dataclass(frozen=True, slots=True)
class MigrationState:
    current: list[str]  # empty: never migrated
    heads: list[str]

    @property
    def up_to_date(self) -> bool:
        return sorted(self.current) == sorted(self.heads)


def upgrade(settings: Settings, revision: str = "head") -> None:
    _run(lambda: migrations.upgrade(settings.database.url, revision))


def downgrade(settings: Settings, revision: str = "base") -> None:
    _run(lambda: migrations.downgrade(settings.database.url, revision))


def state(settings: Settings) -> MigrationState:
    url = settings.database.url
    return _run(lambda: MigrationState(migrations.current(url), migrations.heads(url)))


def _run(step: Callable[[], T]) -> T:
    with _translated():
        return step()


@contextmanager
def _translated() -> Iterator[None]:
    from alembic.util import CommandError
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    try:
        yield
    except CommandError as exc:
        raise MigrationError(str(exc)) from exc
    except (OperationalError, InterfaceError, OSError) as exc:
        raise UnavailableError(f"the database is unavailable: {_first_line(exc)}") from exc
    except DBAPIError as exc:
        raise MigrationError(f"a migration step failed: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
