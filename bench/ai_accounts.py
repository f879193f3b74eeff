"""Run by the AI phase in Portico's environment: move the bench's accounts to a tier and
grant them credits through the core services (as `portico tier set` and `portico
credits grant` do, for many accounts in one process).

    python -m bench.ai_accounts --tier enterprise --credits N EMAIL...
"""

from __future__ import annotations

import argparse
import asyncio

from core.billing.credits import CreditService
from core.billing.plans import PlanService
from core.identity.service import AccountService
from entrypoints.bootstrap.runtime import start_runtime
from entrypoints.bootstrap.settings import Settings


async def prepare(emails: list[str], tier: str, credits: int) -> None:
    runtime = await start_runtime(Settings(), run_jobs=False)
    try:
        for email in emails:
            user = await runtime.get(AccountService).get_by_email(email)
            assert user.id is not None
            await runtime.get(PlanService).change_tier(user.id, tier, reason="bench")
            await runtime.get(CreditService).grant(
                user.id, credits, idempotency_key=f"bench:{email}", source="bench", note="bench"
            )
    finally:
        await runtime.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tier", required=True)
    parser.add_argument("--credits", type=int, required=True)
    parser.add_argument("emails", nargs="+")
    args = parser.parse_args()
    asyncio.run(prepare(args.emails, args.tier, args.credits))


if __name__ == "__main__":
    main()
