"""The whole schema: importing this module registers every record on `metadata`.

Each context's records live in their own module; add the module to the imports below so
migrations, `create_tables` and the tests see its tables.
"""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sqlalchemy import (
    records,  # noqa: F401  (users)
    records_audit,  # noqa: F401  (audit_log)
    records_billing,  # noqa: F401  (tiers, products, user_products, enterprise_overrides)
    records_conversations,  # noqa: F401  (conversations, messages, model_prices)
    records_credits,  # noqa: F401  (credit_accounts, credit_ledger, credit_reservations...)
    records_identity_tokens,  # noqa: F401  (one_time_tokens)
    records_jobs,  # noqa: F401  (jobs)
    records_notifications,  # noqa: F401  (notification_preferences)
    records_oauth,  # noqa: F401  (oauth_identities)
    records_payment_events,  # noqa: F401  (webhook_events, payment_reconciliations)
    records_payments,  # noqa: F401  (payment_customers, checkouts, subscriptions, payments)
    records_refresh_tokens,  # noqa: F401  (refresh_tokens)
)
from adapters.sqlalchemy.records import Base

metadata: MetaData = Base.metadata


async def create_tables(engine: AsyncEngine) -> None:
    """Create missing tables from the records (tests and throwaway setups; not production)."""
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
