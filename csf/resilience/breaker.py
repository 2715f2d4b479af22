"""The circuit breaker state machine (what counts as a failure is decided by the caller).

    CLOSED --(>= min_calls in window_s, and error or slow ratio reached)--> OPEN
    OPEN --(open_s later)--> HALF_OPEN: exactly half_open_probes calls let through
    HALF_OPEN --(every probe succeeds)--> CLOSED;  --(a probe fails)--> OPEN

`force` pins it open or closed (pushed from ZooKeeper). `update(rule)` takes new
thresholds without losing the state. A call asks `allow()` for a ticket and hands it
back to `record()`; results of calls let through in an earlier state are ignored.
"""

from __future__ import annotations

import enum
import time

from csf.resilience._window import Clock, SlidingCounts
from csf.rules import BreakerRule


class State(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(self, rule: BreakerRule | None = None, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self.rule = rule or BreakerRule()
        self._state = State.CLOSED
        self._generation = 0
        self._opened_at = 0.0
        self._probes_let = 0
        self._probes_passed = 0
        self._window = SlidingCounts(self.rule.window_s, 3, clock)  # calls, errors, slow

    @property
    def state(self) -> State:
        if self.rule.force == "open":
            return State.OPEN
        if self.rule.force == "closed":
            return State.CLOSED
        if self._state is State.OPEN and self._clock() >= self._opened_at + self.rule.open_s:
            self._enter(State.HALF_OPEN)
        return self._state

    def update(self, rule: BreakerRule) -> None:
        if rule.window_s != self.rule.window_s:
            self._window = SlidingCounts(rule.window_s, 3, self._clock)
        self.rule = rule

    def allow(self) -> int | None:
        """A ticket for one call, or None when the call must not go through."""
        state = self.state
        if state is State.OPEN:
            return None
        if state is State.HALF_OPEN and self.rule.force is None:
            if self._probes_let >= self.rule.half_open_probes:
                return None
            self._probes_let += 1
        return self._generation

    def record(self, ticket: int, failed: bool, seconds: float) -> None:
        """The outcome of the call `ticket` was given for."""
        if ticket != self._generation or self.rule.force is not None:
            return
        slow = seconds * 1000 >= self.rule.slow_call_ms
        if self._state is State.HALF_OPEN:
            if failed or slow:
                self._enter(State.OPEN)
            else:
                self._probes_passed += 1
                if self._probes_passed >= self.rule.half_open_probes:
                    self._enter(State.CLOSED)
            return
        self._window.add(1, int(failed), int(slow))
        calls, errors, slows = self._window.totals()
        if calls >= self.rule.min_calls and (
            errors / calls >= self.rule.error_ratio or slows / calls >= self.rule.slow_ratio
        ):
            self._enter(State.OPEN)

    def abandon(self, ticket: int) -> None:
        """A call given `ticket` ended without an outcome (cancelled): free its probe."""
        if ticket == self._generation and self._state is State.HALF_OPEN:
            self._probes_let -= 1

    def _enter(self, state: State) -> None:
        self._state = state
        self._generation += 1
        self._probes_let = self._probes_passed = 0
        if state is State.OPEN:
            self._opened_at = self._clock()
        if state is State.CLOSED:
            self._window = SlidingCounts(self.rule.window_s, 3, self._clock)
