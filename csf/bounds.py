"""The documented bounds of every number CSF reads from outside (README: "Bounds").

Rules, instance documents and the provider's own settings are checked against these,
by the same code in consumers, providers, the csf-registry CLI and the console, so a
number one of them accepts is a number all of them can compute with: finite, and small
enough that no sum, product or deadline built from it overflows.
"""

from __future__ import annotations

from dataclasses import dataclass

from csf._quoted import quoted


@dataclass(frozen=True, slots=True)
class Bound:
    """A closed range of numbers, whole numbers only if `whole`."""

    low: float
    high: float
    whole: bool = False

    def check(self, where: str, value: object, error: type[Exception]) -> float:
        """`value` as a float within the bound; else `error` naming `where` and the range."""
        return float(self._within(where, value, error))

    def check_whole(self, where: str, value: object, error: type[Exception]) -> int:
        """`value` as an int within the bound; else `error` naming `where` and the range."""
        return int(self._within(where, value, error))

    def _within(self, where: str, value: object, error: type[Exception]) -> int | float:
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and (isinstance(value, int) or not self.whole)
            and self.low <= value <= self.high  # false for NaN, and for infinities
        ):
            return value
        raise error(f"{where}: expected {self.describe()}, got {quoted(value)}")

    def describe(self) -> str:
        kind = "a whole number" if self.whole else "a number"
        return f"{kind} from {_number(self.low)} to {_number(self.high)}"


def _number(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:g}"


RATIO = Bound(0, 1)
"""error_ratio, slow_ratio, budget_ratio."""
TIMEOUT_MS = Bound(1, 86_400_000)
"""timeout_ms: one millisecond to one day."""
SLOW_CALL_MS = Bound(1, 3_600_000)
"""slow_call_ms: one millisecond to one hour."""
MAX_WAIT_MS = Bound(0, 60_000)
"""max_wait_ms (ratelimit, concurrency): at most a minute in a queue."""
WINDOW_S = Bound(0.01, 3_600)
"""breaker window_s and open_s: ten milliseconds to an hour."""
RATE = Bound(0.001, 1_000_000)
"""ratelimit rate, calls per second."""
BURST = Bound(1, 1_000_000)
"""ratelimit burst."""
CALLS = Bound(1, 1_000_000, whole=True)
"""breaker min_calls, concurrency consumer/provider."""
PROBES = Bound(1, 10_000, whole=True)
"""breaker half_open_probes."""
RETRIES = Bound(0, 10, whole=True)
"""retry retries: more multiplies load for no gain (the retry budget caps them anyway)."""
PER_SECOND = Bound(0, 1_000_000, whole=True)
"""retry budget_min_per_s."""
WEIGHT = Bound(0, 100_000, whole=True)
"""A provider's weight, a weight rule's, a route rule's group weight."""
PORT = Bound(1, 65_535, whole=True)
PID = Bound(0, 2**32 - 1, whole=True)
START_TIME = Bound(0, 4_102_444_800)
"""A provider's start time, Unix seconds, before 2100."""
WARMUP_S = Bound(0, 86_400)
"""A provider's warm-up, seconds: at most a day."""
BUCKETS = Bound(1, 100_000, whole=True)
"""A `set` rule's buckets."""

SECONDS = Bound(0.001, 86_400)
"""A timeout, wait or grace given in code (timeout=, startup_wait=, grace=), and the
clock skew CallerAuth allows: at most a day."""
SESSION_TIMEOUT = Bound(1, 600)
"""A ZooKeeper session's timeout, seconds: shorter expires on any hiccup; ZooKeeper
caps longer ones anyway."""

MAX_ENTRIES = 1_000
"""Entries of any map in a rule (methods, groups, instances, tags)."""
MAX_PROVIDERS = 1_000
"""Providers a consumer keeps per service cluster, and instances a snapshot holds."""
MAX_DESCRIPTORS = 10_000
"""Descriptors (gRPC services under `<service>/services/`) a tenant's watch keeps."""
