"""Counters over a sliding time window, in buckets (Sentinel's LeapArray, simplified)."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]
BUCKETS = 10


class SlidingCounts:
    """`width` counters summed over the last `window` seconds, in BUCKETS slices."""

    __slots__ = ("_clock", "_counts", "_slice", "_stamps", "width")

    def __init__(self, window: float, width: int, clock: Clock = time.monotonic) -> None:
        self.width = width
        self._clock = clock
        self._slice = window / BUCKETS
        self._counts = [[0] * width for _ in range(BUCKETS)]
        self._stamps = [-1] * BUCKETS

    def add(self, *amounts: int) -> None:
        """Add `amounts` (one per counter) to the current slice."""
        tick = int(self._clock() / self._slice)
        index = tick % BUCKETS
        counts = self._counts[index]
        if self._stamps[index] != tick:  # the slice is from an older turn: reuse it
            self._stamps[index] = tick
            counts[:] = [0] * self.width
        for position, amount in enumerate(amounts):
            counts[position] += amount

    def totals(self) -> list[int]:
        """Each counter summed over the slices still inside the window."""
        oldest = int(self._clock() / self._slice) - BUCKETS + 1
        totals = [0] * self.width
        for stamp, counts in zip(self._stamps, self._counts, strict=True):
            if stamp >= oldest:
                for position, count in enumerate(counts):
                    totals[position] += count
        return totals
