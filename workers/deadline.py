"""Deadline: one overall time budget for a package install, shared out among the pip calls it makes."""

from __future__ import annotations

import time
from dataclasses import dataclass


class DeadlinePassed(Exception):
    """The install's time budget is spent; the message is the user's reason."""


@dataclass(frozen=True)
class Deadline:
    """A point on the monotonic clock (seconds) by which the whole install must end."""

    at_s: float

    @classmethod
    def after_ms(cls, budget_ms: int) -> Deadline:
        return cls(time.monotonic() + budget_ms / 1000)

    def remaining_s(self) -> float:
        """Seconds left (never negative)."""
        return max(0.0, self.at_s - time.monotonic())

    def timeout_s(self, cap_s: float | None = None) -> float:
        """The time one call may take: what is left (at most cap_s); DeadlinePassed if nothing is left."""
        left = self.remaining_s()
        if left <= 0:
            raise DeadlinePassed("the package install ran out of time")
        return left if cap_s is None else min(left, cap_s)
