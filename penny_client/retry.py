"""When to retry a request and how long to wait first (pure: the client does the sleeping)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

RETRYABLE_STATUSES = frozenset({429, 503})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, in seconds; a Retry-After from the service wins (capped).

    `max_retries` counts retries after the first attempt (0 turns retrying off).
    """

    max_retries: int = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    random: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def delay_s(self, retry_number: int, *, retry_after_s: float | None = None) -> float:
        """Seconds to wait before retry number `retry_number` (1-based)."""
        if retry_after_s is not None:
            return min(retry_after_s, self.max_backoff_s)
        ceiling = min(self.max_backoff_s, self.backoff_s * 2 ** (retry_number - 1))
        # Full jitter in [ceiling/2, ceiling]: spreads clients that failed together, never retries at once.
        return ceiling * (0.5 + self.random() / 2)

    def allows(self, retry_number: int) -> bool:
        """Whether retry number `retry_number` (1-based) may happen."""
        return retry_number <= self.max_retries


NO_RETRY = RetryPolicy(max_retries=0)
