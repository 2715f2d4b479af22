"""Outlier ejection of one endpoint: consecutive failures, or a poor success rate.

An ejected endpoint is skipped by the balancers (unless every endpoint is ejected: panic
mode) for a back-off that doubles with each ejection in a row, up to MAX_EJECTION, with
jitter so that consumers do not all come back at once.
"""

from __future__ import annotations

import random
import time

from csf.resilience._window import Clock, SlidingCounts

CONSECUTIVE_FAILURES = 5
SUCCESS_RATE_MIN_CALLS = 20
SUCCESS_RATE_THRESHOLD = 0.5
WINDOW = 10.0
BASE_EJECTION = 1.0
MAX_EJECTION = 30.0


class OutlierDetector:
    __slots__ = ("_clock", "_consecutive", "_outcomes", "ejected_until", "ejections")

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._consecutive = 0
        self._outcomes = SlidingCounts(WINDOW, 2, clock)  # calls, failures
        self.ejected_until = 0.0
        self.ejections = 0

    def ejected(self) -> bool:
        return self._clock() < self.ejected_until

    def record(self, failed: bool) -> None:
        self._outcomes.add(1, int(failed))
        if not failed:
            self._consecutive = 0
            if self.ejections and not self.ejected():
                self.ejections = 0  # back in good standing
            return
        self._consecutive += 1
        if self.ejected():
            return
        calls, failures = self._outcomes.totals()
        poor_rate = (
            calls >= SUCCESS_RATE_MIN_CALLS and (calls - failures) / calls < SUCCESS_RATE_THRESHOLD
        )
        if self._consecutive >= CONSECUTIVE_FAILURES or poor_rate:
            self._eject()

    def _eject(self) -> None:
        backoff = min(MAX_EJECTION, BASE_EJECTION * 2**self.ejections)
        self.ejected_until = self._clock() + backoff * random.uniform(0.5, 1.5)
        self.ejections += 1
        self._consecutive = 0
        self._outcomes = SlidingCounts(WINDOW, 2, self._clock)
