"""How many warm sandboxes a pool should hold: the recent peak of demand, within a floor, a ceiling and memory.

Demand is counted in slots of SLOT_S seconds: the number of acquires (session creates) that fell into
each slot. The target is the busiest slot of the last WINDOW_S seconds, so a burst of 20 creates makes the
pool hold 20 warm sandboxes for the next two minutes (the next burst starts warm), and a pool left idle
shrinks back to its floor once the burst has aged out of the window. Growth beyond the sandboxes a pool
already has is bounded by the host's available memory: each extra sandbox must leave MEMORY_RESERVE_BYTES
free after PER_SANDBOX_BYTES (an idle session sandbox is about 21 MB; the estimate is generous).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

SLOT_S = 5.0
WINDOW_S = 120.0
PER_SANDBOX_BYTES = 64 * 2**20
MEMORY_RESERVE_BYTES = 1 * 2**30


@dataclass
class DemandTracker:
    """Acquires per slot over the last window; target() is the pool size they call for."""

    minimum: int
    maximum: int
    slot_s: float = SLOT_S
    window_s: float = WINDOW_S
    _slots: deque[list[int]] = field(default_factory=deque)  # [slot index, acquires], oldest first

    def note(self, now_s: float) -> None:
        """One acquire at monotonic time now_s."""
        slot = int(now_s // self.slot_s)
        if self._slots and self._slots[-1][0] == slot:
            self._slots[-1][1] += 1
        else:
            self._slots.append([slot, 1])
        self._forget(now_s)

    def peak(self, now_s: float) -> int:
        self._forget(now_s)
        return max((count for _, count in self._slots), default=0)

    def target(self, now_s: float, *, have: int, available_bytes: int, ceiling: int | None = None) -> int:
        """The pool size to aim for: the recent peak within [minimum, maximum] and the ceiling (e.g. the
        sessions the host may still open); above `have`, only as many as the available memory allows."""
        upper = self.maximum if ceiling is None else max(self.minimum, min(self.maximum, ceiling))
        want = max(self.minimum, min(upper, self.peak(now_s)))
        if want > have:
            affordable = max(0, (available_bytes - MEMORY_RESERVE_BYTES) // PER_SANDBOX_BYTES)
            want = max(min(want, have + affordable), min(want, self.minimum))
        return want

    def _forget(self, now_s: float) -> None:
        oldest = int((now_s - self.window_s) // self.slot_s)
        while self._slots and self._slots[0][0] <= oldest:
            self._slots.popleft()
