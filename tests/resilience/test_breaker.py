"""The breaker's state machine on a fake clock."""

from dataclasses import replace

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


def test_opens_at_exactly_the_error_ratio() -> None:
    breaker = CircuitBreaker(RULE, FakeClock())
    _calls(breaker, 5)
    _calls(breaker, 4, failed=True)
    assert breaker.state is State.CLOSED
    _calls(breaker, 1, failed=True)  # 5 of 10: the ratio of 0.5 is reached
    assert breaker.state is State.OPEN


def test_a_call_is_slow_from_slow_call_ms_on() -> None:
    breaker = CircuitBreaker(RULE, FakeClock())
    _calls(breaker, 10, seconds=0.09995)  # a hair under 100 ms
    assert breaker.state is State.CLOSED
    _calls(breaker, 10, seconds=0.1)
    assert breaker.state is State.OPEN


def test_stays_closed_below_the_slow_call_ratio() -> None:
    breaker = CircuitBreaker(RULE, FakeClock())
    for _ in range(10):
        _calls(breaker, 1, seconds=0.2)
        _calls(breaker, 2)
    assert breaker.state is State.CLOSED


def test_half_open_needs_every_probe_to_close() -> None:
    clock = FakeClock()
    breaker = _open(clock)
    clock.advance(5)
    tickets = [breaker.allow() for _ in range(3)]
    for ticket in tickets[:2]:
        assert ticket is not None
        breaker.record(ticket, False, 0.01)
    assert breaker.state is State.HALF_OPEN
    assert tickets[2] is not None
    breaker.record(tickets[2], False, 0.01)
    assert breaker.state is State.CLOSED


def test_an_abandoned_probe_frees_exactly_one_place() -> None:
    clock = FakeClock()
    breaker = _open(clock)
    clock.advance(5)
    probes = [breaker.allow() for _ in range(3)]
    assert probes[0] is not None
    breaker.abandon(probes[0])
    assert breaker.allow() is not None
    assert breaker.allow() is None


def test_abandoning_a_call_from_before_the_half_open_state_frees_no_probe() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(RULE, clock)
    before = breaker.allow()
    assert before is not None
    _calls(breaker, 10, failed=True)
    clock.advance(5)
    assert all(breaker.allow() is not None for _ in range(3))
    breaker.abandon(before)
    assert breaker.allow() is None


def test_probes_of_an_earlier_half_open_state_are_ignored() -> None:
    clock = FakeClock()
    breaker = _open(clock)
    clock.advance(5)
    first, second, third = (breaker.allow() for _ in range(3))
    assert first is not None and second is not None and third is not None
    breaker.record(first, True, 0.01)  # open again ...
    clock.advance(5)
    assert breaker.state is State.HALF_OPEN
    breaker.record(second, False, 0.01)  # ... so these two say nothing of the new probes
    breaker.record(third, False, 0.01)
    probe = breaker.allow()
    assert probe is not None
    breaker.record(probe, False, 0.01)
    assert breaker.state is State.HALF_OPEN


def test_a_closed_breaker_counts_afresh_on_its_own_clock() -> None:
    clock = FakeClock()
    breaker = _open(clock)
    clock.advance(5)
    for ticket in [breaker.allow() for _ in range(3)]:
        assert ticket is not None
        breaker.record(ticket, False, 0.01)
    _calls(breaker, 9, failed=True)
    clock.advance(11)  # those nine leave the window
    _calls(breaker, 9)
    _calls(breaker, 1, failed=True)
    assert breaker.state is State.CLOSED


def test_an_update_keeps_the_window_unless_its_length_changes() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(RULE, clock)
    _calls(breaker, 9, failed=True)
    breaker.update(replace(RULE, open_s=7))
    _calls(breaker, 1, failed=True)  # the tenth failure in the same window
    assert breaker.state is State.OPEN


def test_an_update_to_a_longer_window_counts_over_it() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(RULE, clock)
    breaker.update(replace(RULE, window_s=20))
    _calls(breaker, 9, failed=True)
    clock.advance(15)  # inside 20 s
    _calls(breaker, 1, failed=True)
    assert breaker.state is State.OPEN


def test_an_updated_window_counts_on_the_same_clock() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(RULE, clock)
    breaker.update(replace(RULE, window_s=20))
    _calls(breaker, 9, failed=True)
    clock.advance(21)  # past 20 s: those nine have left
    _calls(breaker, 9)
    _calls(breaker, 1, failed=True)
    assert breaker.state is State.CLOSED
