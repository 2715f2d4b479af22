"""Peak-EWMA latency (Finagle's): a slower observation counts at once, faster ones decay
in with a time constant, so a turn for the slower shows immediately and fades slowly."""

from __future__ import annotations

import math

DECAY_SECONDS = 10.0


class PeakEwma:
    __slots__ = ("_at", "value")

    def __init__(self) -> None:
        self.value = 0.0
        """Seconds; 0 until the first observation."""
        self._at = 0.0

    def observe(self, latency: float, now: float) -> None:
        if latency > self.value:
            self.value = latency
        else:
            keep = math.exp(-(now - self._at) / DECAY_SECONDS)
            self.value = self.value * keep + latency * (1 - keep)
        self._at = now
