"""One service's live figures as a ring of points, made from successive scrapes.

Counters only grow, so a figure over an interval is the difference of two readings of
the same endpoint: calls/s from the calls counter, the error ratio from the errors
counter, p50/p99 from the duration histogram's buckets. An endpoint seen for the first
time (or again after a failed scrape) is a baseline only; a counter that went down
means the process restarted, and its new value is what it counted since.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from csf.console.exposition import Reading

POINTS = 60  # the ring's length: a minute at one scrape a second


@dataclass(frozen=True)
class Point:
    """The service's figures over one interval between two scrapes."""

    calls_per_s: float
    error_ratio: float  # 0 when there were no calls
    p50_s: float | None  # None when no call was measured
    p99_s: float | None


def _grown(previous: float, current: float) -> float:
    return current - previous if current >= previous else current


def delta(previous: Reading, current: Reading) -> Reading:
    """What the endpoint counted between the two readings."""
    calls = _grown(previous.calls, current.calls)
    buckets = {
        bound: _grown(previous.buckets.get(bound, 0.0), count)
        for bound, count in current.buckets.items()
    }
    return Reading(calls, min(calls, _grown(previous.errors, current.errors)), buckets, None)


def quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """The `q` quantile of a cumulative histogram (bound -> count at most that), found by
    linear interpolation in its bucket as Prometheus' histogram_quantile does; a rank in
    the +Inf bucket gives the highest finite bound. None when it holds no count."""
    bounds = sorted(buckets)
    if not bounds:
        return None
    # Summed from several endpoints a histogram may not be monotonic; make it so.
    running = 0.0
    cumulative = []
    for bound in bounds:
        running = max(running, buckets[bound])
        cumulative.append(running)
    total = cumulative[-1]
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, count in zip(bounds, cumulative, strict=True):
        if count >= rank:
            if math.isinf(bound):
                return lower
            inside = count - below
            share = (rank - below) / inside if inside > 0 else 1.0
            return lower + (bound - lower) * share
        lower, below = bound, count
    return lower


def point(elapsed_s: float, deltas: list[Reading]) -> Point:
    """The figures of an interval of `elapsed_s` from every endpoint's delta over it."""
    calls = sum(d.calls for d in deltas)
    errors = sum(d.errors for d in deltas)
    buckets: dict[float, float] = {}
    for d in deltas:
        for bound, count in d.buckets.items():
            buckets[bound] = buckets.get(bound, 0.0) + count
    return Point(
        calls_per_s=calls / elapsed_s if elapsed_s > 0 else 0.0,
        error_ratio=errors / calls if calls > 0 else 0.0,
        p50_s=quantile(0.5, buckets),
        p99_s=quantile(0.99, buckets),
    )


class Series:
    """The last POINTS points of one service, and each endpoint's last reading."""

    def __init__(self) -> None:
        self.points: deque[Point] = deque(maxlen=POINTS)
        self.readings: dict[str, Reading] = {}
        self.scraped_at: float | None = None
        self.breaker: int | None = None

    def add(self, at: float, readings: Mapping[str, Reading]) -> None:
        """A scrape made at `at`: the endpoints that answered, by URL."""
        if self.scraped_at is not None and at > self.scraped_at:
            deltas = [delta(self.readings[url], r) for url, r in readings.items()
                      if url in self.readings]  # fmt: skip
            self.points.append(point(at - self.scraped_at, deltas))
        states = [r.breaker for r in readings.values() if r.breaker is not None]
        self.breaker = max(states) if states else None
        self.readings = dict(readings)
        self.scraped_at = at
