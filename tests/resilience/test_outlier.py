"""Outlier ejection on a fake clock: both sides of each threshold the README promises
(5 failures in a row; under 50% success over 20 calls), and the back-off."""

from collections.abc import Iterator

import pytest

from csf.resilience import outlier
from csf.resilience.outlier import OutlierDetector
from tests.resilience.clock import FakeClock

F, S = True, False  # a failed call, a successful one


def _record(detector: OutlierDetector, outcomes: list[bool]) -> list[bool]:
    """Record `outcomes` in turn; whether the detector was ejected after each."""
    ejected = []
    for failed in outcomes:
        detector.record(failed)
        ejected.append(detector.ejected())
    return ejected


def _longest_run_of_failures(outcomes: list[bool]) -> int:
    longest = run = 0
    for failed in outcomes:
        run = run + 1 if failed else 0
        longest = max(longest, run)
    return longest


@pytest.fixture
def midpoint_jitter(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The jitter at its middle, so that each back-off is exact."""
    monkeypatch.setattr(outlier.random, "uniform", lambda low, high: (low + high) / 2)
    yield


def test_four_failures_in_a_row_do_not_eject_and_the_fifth_does() -> None:
    detector = OutlierDetector(FakeClock())
    assert _record(detector, [F, F, F, F, F]) == [False] * 4 + [True]


def test_a_success_breaks_the_run_of_failures() -> None:
    detector = OutlierDetector(FakeClock())
    assert not any(_record(detector, [F, F, F, F, S, F, F, F, F]))
    assert _record(detector, [F]) == [True]


def test_exactly_half_successes_over_twenty_calls_is_not_poor() -> None:
    outcomes = [S, F] * 10  # the 20th call fails: the rate is checked on it
    assert _longest_run_of_failures(outcomes) < 5
    detector = OutlierDetector(FakeClock())
    assert not any(_record(detector, outcomes))


def test_nine_successes_in_twenty_calls_eject_on_the_twentieth() -> None:
    outcomes = [F, F] + [S, F] * 9  # 11 failures, never more than two in a row
    assert len(outcomes) == 20 and _longest_run_of_failures(outcomes) < 5
    detector = OutlierDetector(FakeClock())
    assert _record(detector, outcomes) == [False] * 19 + [True]


def test_a_poor_rate_over_nineteen_calls_is_not_enough() -> None:
    outcomes = [F, F, S] * 6 + [F]  # 13 of 19 failed
    assert _longest_run_of_failures(outcomes) < 5
    detector = OutlierDetector(FakeClock())
    assert not any(_record(detector, outcomes))
    assert _record(detector, [F]) == [True]


def test_the_success_rate_counts_only_the_last_ten_seconds() -> None:
    clock = FakeClock()
    detector = OutlierDetector(clock)
    assert not any(_record(detector, [F, F, S] * 4))
    clock.advance(11)  # those 12 calls leave the window
    assert not any(_record(detector, [F, F, S] * 6 + [F]))  # 19 calls in the window
    assert _record(detector, [F]) == [True]  # the 20th


def test_a_new_detector_is_not_ejected_even_on_a_clock_near_zero() -> None:
    detector = OutlierDetector(FakeClock(0.0))
    assert not detector.ejected()
    assert not any(_record(detector, [F, F, F, F]))


@pytest.mark.usefixtures("midpoint_jitter")
def test_the_back_off_doubles_with_each_ejection_in_a_row_up_to_thirty_seconds() -> None:
    clock = FakeClock()
    detector = OutlierDetector(clock)
    backoffs = []
    for _ in range(8):
        _record(detector, [F] * 5)
        backoffs.append(detector.ejected_until - clock.now)
        clock.advance(backoffs[-1])
        assert not detector.ejected()
    assert backoffs == [1, 2, 4, 8, 16, 30, 30, 30]


@pytest.mark.usefixtures("midpoint_jitter")
def test_a_success_after_the_ejection_restores_good_standing() -> None:
    clock = FakeClock()
    detector = OutlierDetector(clock)
    _record(detector, [F] * 5)
    _record(detector, [S])  # still ejected: it does not count as good standing yet
    clock.advance(1)
    _record(detector, [F] * 5)
    assert detector.ejected_until - clock.now == 2, "the second ejection in a row"
    clock.advance(2)
    _record(detector, [S])  # back, and well
    _record(detector, [F] * 5)
    assert detector.ejected_until - clock.now == 1, "a first ejection again"
    assert detector.ejections == 1


def test_after_an_ejection_a_run_of_failures_starts_from_nothing() -> None:
    clock = FakeClock()
    detector = OutlierDetector(clock)
    _record(detector, [F] * 5)
    clock.now = detector.ejected_until
    assert _record(detector, [F, F, F, F, F]) == [False] * 4 + [True]


def test_after_an_ejection_the_success_rate_starts_afresh_on_the_same_clock() -> None:
    clock = FakeClock()
    detector = OutlierDetector(clock)
    _record(detector, [F] * 5)
    clock.now = detector.ejected_until
    assert not any(_record(detector, [F, F, S] * 4))
    clock.advance(11)  # those 12 calls leave the window
    assert not any(_record(detector, [F, F, S] * 5 + [F, F]))


def test_the_jitter_spreads_a_back_off_from_half_to_one_and_a_half_times() -> None:
    backoffs = []
    for _ in range(200):
        clock = FakeClock()
        detector = OutlierDetector(clock)
        _record(detector, [F] * 5)
        backoffs.append(detector.ejected_until - clock.now)
    assert all(0.5 <= backoff <= 1.5 for backoff in backoffs)
    assert min(backoffs) < 0.6 and max(backoffs) > 1.4  # each misses with p = 0.9^200
