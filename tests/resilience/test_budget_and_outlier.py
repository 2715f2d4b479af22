from csf.resilience.budget import RetryBudget
from csf.resilience.outlier import CONSECUTIVE_FAILURES, MAX_EJECTION, OutlierDetector
from tests.resilience.clock import FakeClock


def test_retries_are_capped_at_the_ratio_plus_the_floor() -> None:
    clock = FakeClock()
    budget = RetryBudget(ratio=0.2, min_per_s=1, clock=clock)
    granted = 0
    for _ in range(1_000):
        budget.deposit()
        granted += budget.try_withdraw()
    assert granted == 0.2 * 1_000 + 1 * 10
    clock.advance(11)  # the window has passed: only the floor is left
    assert sum(budget.try_withdraw() for _ in range(100)) == 10


def test_consecutive_failures_eject_with_growing_jittered_backoff() -> None:
    clock = FakeClock()
    detector = OutlierDetector(clock)
    for _ in range(CONSECUTIVE_FAILURES - 1):
        detector.record(failed=True)
    assert not detector.ejected()
    detector.record(failed=True)
    assert detector.ejected()
    first = detector.ejected_until - clock.now
    assert 0.5 <= first <= 1.5
    clock.advance(first)
    assert not detector.ejected()
    for _ in range(CONSECUTIVE_FAILURES):
        detector.record(failed=True)
    assert 1.0 <= detector.ejected_until - clock.now <= 3.0  # doubled
    for _ in range(10):
        clock.advance(MAX_EJECTION * 2)
        for _ in range(CONSECUTIVE_FAILURES):
            detector.record(failed=True)
    assert detector.ejected_until - clock.now <= MAX_EJECTION * 1.5


def test_a_poor_success_rate_ejects_without_a_run_of_failures() -> None:
    detector = OutlierDetector(FakeClock())
    for _ in range(12):
        detector.record(failed=True)
        detector.record(failed=True)
        detector.record(failed=False)
        if detector.ejected():
            break
    assert detector.ejected()
