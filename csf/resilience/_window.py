"""Counters over a sliding time window, in buckets (Sentinel's LeapArray, simplified)."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]
BUCKETS = 10


class SlidingCounts:
    """`width` counters summed over the last `window` seconds, in BUCKETS slices.

    Every call adds to it, so the sums are kept as it goes: a slice leaving the window is
    taken off them once, when the clock first enters a new slice."""

    __slots__ = ("_clock", "_counts", "_slice", "_stamps", "_tick", "_totals", "width")

    def __init__(self, window: float, width: int, clock: Clock = time.monotonic) -> None:
        self.width = width
        self._clock = clock
        self._slice = window / BUCKETS
        self._counts = [[0] * width for _ in range(BUCKETS)]
        self._stamps = [-1] * BUCKETS
        self._totals = [0] * width
        self._tick = -1
        """The slice the clock was last seen in."""

    def _enter(self, tick: int) -> None:
        """The clock entered slice `tick`: drop the slices no longer inside the window."""
        self._tick = tick
        for index, stamp in enumerate(self._stamps):
            if stamp != -1 and not tick - BUCKETS < stamp <= tick:
                counts, totals = self._counts[index], self._totals
                for position, count in enumerate(counts):
                    totals[position] -= count
                counts[:] = [0] * self.width
                self._stamps[index] = -1
        self._stamps[tick % BUCKETS] = tick

    def add(self, *amounts: int) -> None:
        """Add `amounts` (one per counter) to the current slice."""
        tick = int(self._clock() / self._slice)
        if tick != self._tick:
            self._enter(tick)
        counts, totals = self._counts[tick % BUCKETS], self._totals
        for position, amount in enumerate(amounts):
            if amount:
                counts[position] += amount
                totals[position] += amount

    def totals(self) -> list[int]:
        """Each counter summed over the slices still inside the window."""
        tick = int(self._clock() / self._slice)
        if tick != self._tick:
            self._enter(tick)
        return list(self._totals)
