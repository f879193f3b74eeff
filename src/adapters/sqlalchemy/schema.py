"""The whole schema: importing this module registers every record on `metadata`.

Each context's records live in their own module; add the module to the imports below so
migrations, `create_tables` and the tests see its tables.
"""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sqlalchemy import records  # noqa: F401  (users)
from adapters.sqlalchemy.records import Base

metadata: MetaData = Base.metadata


async def create_tables(engine: AsyncEngine) -> None:
    """Create missing tables from the records (tests and throwaway setups; not production)."""
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
