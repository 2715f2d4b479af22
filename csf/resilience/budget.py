"""A retry budget in Finagle's manner: retries may add `ratio` of recent calls, plus a floor.

Over the last TTL seconds, retries are allowed while they number fewer than
ratio x calls + min_per_s x TTL, so a failing provider cannot multiply the load.
"""

from __future__ import annotations

import time

from csf.resilience._window import Clock, SlidingCounts

TTL = 10.0


class RetryBudget:
    __slots__ = ("_counts", "min_per_s", "ratio")

    def __init__(self, ratio: float, min_per_s: int, clock: Clock = time.monotonic) -> None:
        self.ratio = ratio
        self.min_per_s = min_per_s
        self._counts = SlidingCounts(TTL, 2, clock)  # calls, retries

    def deposit(self) -> None:
        """One call was made."""
        self._counts.add(1, 0)

    def try_withdraw(self) -> bool:
        """Spend one retry if the budget allows it."""
        calls, retries = self._counts.totals()
        if retries >= self.ratio * calls + self.min_per_s * TTL:
            return False
        self._counts.add(0, 1)
        return True
