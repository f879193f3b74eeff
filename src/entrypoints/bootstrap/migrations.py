"""Schema migrations for the configured database (the CLI's `portico db ...`)."""

from __future__ import annotations

from adapters.sqlalchemy import migrations
from entrypoints.bootstrap.settings import Settings


def upgrade(settings: Settings, revision: str = "head") -> None:
    migrations.upgrade(settings.database.url, revision)


def downgrade(settings: Settings, revision: str = "base") -> None:
    migrations.downgrade(settings.database.url, revision)
