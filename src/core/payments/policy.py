"""The settings payments run by, as a core value (built from the settings at startup)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from core.identity.model import DEFAULT_TIER


@dataclass(frozen=True, slots=True)
class PaymentPolicy:
    """Where the gateway's pages send people back to, and the subscription rules' times.

    - `grace_period`: how long a past-due subscription keeps its tier after the first
      failed renewal; then the user is on `default_tier` until a payment goes through.
    - `first_reconcile_lookback`: how far back the first `reconcile` lists events; later
      runs start where the last one ended, less `reconcile_overlap`.
    """

    success_url: str
    cancel_url: str
    portal_return_url: str
    grace_period: timedelta = timedelta(days=7)
    default_tier: str = DEFAULT_TIER
    first_reconcile_lookback: timedelta = timedelta(days=3)
    reconcile_overlap: timedelta = timedelta(minutes=10)
    reconcile_batch: int = 500
    maintenance_batch: int = 200
