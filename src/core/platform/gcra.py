"""The generic cell rate algorithm (GCRA): one number per key, exact under any burst.

A limit of `limit` units per `window` is a cell every `interval = window // limit`
microseconds, with a burst of up to `limit` cells. The only state is the key's
theoretical arrival time (TAT): when its bucket would be empty again. A hit of `cost`
moves the TAT `cost` intervals on (from now, if it lay in the past) and is allowed if
the TAT then lies at most `limit` intervals ahead. Adapters that keep the TAT elsewhere
(the Redis script) compute exactly this.

What it guarantees: a burst gets exactly `limit` units; after that one unit every
`interval`; any span of `window` seconds holds at most `2 * limit - 1` units (a full
burst at its start and the refills during it), and the long-run rate is `limit` per
`window`. Memory is O(1) per key, whatever the limit.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GcraStep:
    """One decision, in microseconds: the TAT to store (None when denied: nothing
    changes), the units left, and when the whole limit is back / a retry may succeed."""

    allowed: bool
    new_tat: int | None
    remaining: int
    reset_after_us: int
    retry_after_us: int


def gcra_step(tat: int, now: int, limit: int, window_us: int, cost: int) -> GcraStep:
    """Decide one hit of `cost` units at `now` for a key whose stored TAT is `tat`
    (0 for a key never seen or expired)."""
    interval = window_us // limit
    burst = interval * limit
    start = max(tat, now)
    new_tat = start + cost * interval
    if new_tat - now <= burst:
        return GcraStep(True, new_tat, (burst - (new_tat - now)) // interval, new_tat - now, 0)
    return GcraStep(
        allowed=False,
        new_tat=None,
        remaining=(burst - (start - now)) // interval,
        reset_after_us=start - now,
        retry_after_us=new_tat - now - burst,
    )
