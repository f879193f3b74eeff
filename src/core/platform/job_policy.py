"""How jobs are retried and leased: the numbers the executor and the relay share."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class JobPolicy:
    """Retry, lease and batching rules for background jobs.

    - A job gets `max_attempts` runs. After a failed run `n` (1-based) it waits
      `backoff_seconds(n)`: `backoff_base_seconds * 2**(n-1)`, capped at
      `backoff_max_seconds`, then shortened by up to `backoff_jitter` (a fraction) at
      random, so jobs that failed together do not all come back together.
    - One run may take `timeout_seconds`; longer counts as a failure.
    - A claimed or running job is leased for `lease_seconds`; a running job's lease is
      renewed every third of that while it runs, so only a dead runner lets it expire.
    - The relay claims at most `batch_size` jobs per round.
    - An in-process runner runs `runner_concurrency` jobs at once; its relay looks for
      due jobs every `poll_interval_seconds` when no commit wakes it.
    - Done jobs are purged `keep_done_seconds` after they finished (until then their
      idempotency keys keep duplicates out).
    """

    max_attempts: int = 5
    backoff_base_seconds: float = 2.0
    backoff_max_seconds: float = 900.0
    backoff_jitter: float = 0.2
    timeout_seconds: float = 300.0
    lease_seconds: float = 60.0
    batch_size: int = 50
    runner_concurrency: int = 4
    poll_interval_seconds: float = 1.0
    keep_done_seconds: float = 7 * 24 * 3600.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.backoff_base_seconds <= 0 or self.backoff_max_seconds < self.backoff_base_seconds:
            raise ValueError("need 0 < backoff_base_seconds <= backoff_max_seconds")
        if not 0 <= self.backoff_jitter <= 1:
            raise ValueError("backoff_jitter is a fraction between 0 and 1")
        if self.timeout_seconds <= 0 or self.lease_seconds <= 0 or self.batch_size < 1:
            raise ValueError("timeout_seconds, lease_seconds and batch_size must be positive")
        if self.runner_concurrency < 1 or self.poll_interval_seconds <= 0:
            raise ValueError("runner_concurrency and poll_interval_seconds must be positive")
        if self.keep_done_seconds <= 0:
            raise ValueError("keep_done_seconds must be positive")

    def backoff_seconds(self, attempt: int, random_fraction: float) -> float:
        """The wait after failed run number `attempt`; `random_fraction` is in [0, 1)."""
        # Cap the exponent before raising, so a huge attempt count cannot overflow.
        exponent = min(max(attempt - 1, 0), 62)
        delay = min(self.backoff_base_seconds * 2.0**exponent, self.backoff_max_seconds)
        return delay * (1 - self.backoff_jitter * random_fraction)

    @property
    def heartbeat_seconds(self) -> float:
        return self.lease_seconds / 3
