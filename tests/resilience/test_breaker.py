"""The breaker's state machine on a fake clock."""

from csf.resilience.breaker import CircuitBreaker, State
from csf.rules import BreakerRule
from tests.resilience.clock import FakeClock

RULE = BreakerRule(error_ratio=0.5, slow_ratio=0.5, slow_call_ms=100, min_calls=10,
                   window_s=10, open_s=5, half_open_probes=3)  # fmt: skip


def _calls(
    breaker: CircuitBreaker, count: int, failed: bool = False, seconds: float = 0.01
) -> None:
    for _ in range(count):
        ticket = breaker.allow()
        assert ticket is not None
        breaker.record(ticket, failed, seconds)


def test_opens_past_the_error_ratio_only_after_the_minimum_calls() -> None:
    breaker = CircuitBreaker(RULE, FakeClock())
    _calls(breaker, 9, failed=True)
    assert breaker.state is State.CLOSED, "nine calls are under min_calls"
    _calls(breaker, 1, failed=True)
    assert breaker.state is State.OPEN
    assert breaker.allow() is None


def test_stays_closed_below_the_error_ratio() -> None:
    breaker = CircuitBreaker(RULE, FakeClock())
    for _ in range(20):
        _calls(breaker, 1, failed=True)
        _calls(breaker, 2)
    assert breaker.state is State.CLOSED


def test_opens_past_the_slow_call_ratio() -> None:
    breaker = CircuitBreaker(RULE, FakeClock())
    _calls(breaker, 5)
    _calls(breaker, 4, seconds=0.2)
    assert breaker.state is State.CLOSED
    _calls(breaker, 1, seconds=0.2)
    assert breaker.state is State.OPEN


def test_old_outcomes_leave_the_window() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(RULE, clock)
    _calls(breaker, 9, failed=True)
    clock.advance(11)
    _calls(breaker, 9)
    _calls(breaker, 1, failed=True)
    assert breaker.state is State.CLOSED


def _open(clock: FakeClock) -> CircuitBreaker:
    breaker = CircuitBreaker(RULE, clock)
    _calls(breaker, 10, failed=True)
    assert breaker.state is State.OPEN
    return breaker


def test_stays_open_for_its_wait_then_lets_exactly_the_probes_through() -> None:
    clock = FakeClock()
    breaker = _open(clock)
    clock.advance(4.9)
    assert breaker.allow() is None
    clock.advance(0.2)
    assert breaker.state is State.HALF_OPEN
    tickets = [breaker.allow() for _ in range(5)]
    assert [ticket is not None for ticket in tickets] == [True, True, True, False, False]


def test_half_open_closes_when_every_probe_succeeds() -> None:
    clock = FakeClock()
    breaker = _open(clock)
    clock.advance(5)
    tickets = [breaker.allow() for _ in range(3)]
    for ticket in tickets:
        assert ticket is not None
        breaker.record(ticket, False, 0.01)
    assert breaker.state is State.CLOSED
    _calls(breaker, 9, failed=True)  # a fresh window: min_calls again
    assert breaker.state is State.CLOSED


def test_half_open_reopens_when_a_probe_fails_and_waits_again() -> None:
    clock = FakeClock()
    breaker = _open(clock)
    clock.advance(5)
    first, second = breaker.allow(), breaker.allow()
    assert first is not None and second is not None
    breaker.record(first, False, 0.01)
    breaker.record(second, True, 0.01)
    assert breaker.state is State.OPEN
    clock.advance(4.9)
    assert breaker.allow() is None
    clock.advance(0.2)
    assert breaker.allow() is not None


def test_a_cancelled_probe_frees_its_place_and_late_results_are_ignored() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(RULE, clock)
    before = breaker.allow()  # a call let through while closed ...
    _calls(breaker, 10, failed=True)
    clock.advance(5)
    probes = [breaker.allow() for _ in range(3)]
    assert breaker.allow() is None
    assert probes[0] is not None
    breaker.abandon(probes[0])
    assert breaker.allow() is not None
    assert before is not None
    breaker.record(before, True, 0.01)  # ... ends now: it says nothing of the half-open state
    assert breaker.state is State.HALF_OPEN


def test_forced_open_and_closed_and_updates_keep_the_state() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(RULE, clock)
    breaker.update(BreakerRule(force="open"))
    assert breaker.state is State.OPEN and breaker.allow() is None
    breaker.update(BreakerRule(force="closed", min_calls=1))
    _calls(breaker, 50, failed=True)
    assert breaker.state is State.CLOSED
    breaker.update(RULE)
    _calls(breaker, 10, failed=True)
    assert breaker.state is State.OPEN
