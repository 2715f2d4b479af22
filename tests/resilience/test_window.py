"""The sliding window the breaker, the retry budget and outlier ejection count in."""

from hypothesis import given, settings
from hypothesis import strategies as st

from csf.resilience._window import SlidingCounts
from tests.resilience.clock import FakeClock


def test_counts_add_up_over_the_window_and_leave_it_whole_slices_at_a_time() -> None:
    clock = FakeClock(1_000.0)
    counts = SlidingCounts(10.0, 2, clock)  # ten slices of one second
    counts.add(1, 0)
    clock.advance(3)
    counts.add(1, 1)
    clock.advance(6)  # 1009: the first slice is the oldest still inside
    counts.add(2, 0)
    assert counts.totals() == [4, 1]
    clock.advance(1)  # 1010: the first slice has left
    assert counts.totals() == [3, 1]
    clock.advance(3)  # 1013: so has the second
    assert counts.totals() == [2, 0]


def test_a_slice_is_a_tenth_of_the_window() -> None:
    clock = FakeClock(1_000.0)
    counts = SlidingCounts(1.0, 1, clock)
    counts.add(1)
    clock.advance(0.95)
    counts.add(1)
    assert counts.totals() == [2]
    clock.advance(0.1)  # 1001.05: the slice of 1000.0 has left
    assert counts.totals() == [1]


def test_a_slice_reused_on_a_later_turn_starts_from_zero() -> None:
    clock = FakeClock(1_000.0)
    counts = SlidingCounts(10.0, 1, clock)
    counts.add(5)
    clock.advance(10)  # the same slice, one turn later
    counts.add(1)
    assert counts.totals() == [1]


def test_a_new_window_counts_nothing_even_on_a_clock_near_zero() -> None:
    counts = SlidingCounts(10.0, 3, FakeClock(0.0))
    assert counts.totals() == [0, 0, 0]
    counts.add(1, 0, 1)
    assert counts.totals() == [1, 0, 1]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 25), st.integers(0, 3), st.integers(0, 3)), max_size=60))
def test_the_kept_sums_always_equal_the_slices_inside_the_window(
    steps: list[tuple[float, int, int]],
) -> None:
    clock = FakeClock(1_000.0)
    counts = SlidingCounts(10.0, 2, clock)
    added: list[tuple[int, int, int]] = []  # (slice, first, second)
    for advance, first, second in steps:
        clock.advance(advance)
        counts.add(first, second)
        added.append((int(clock() / 1.0), first, second))
        now = int(clock() / 1.0)
        inside = [(a, b) for tick, a, b in added if now - 10 < tick <= now]
        assert counts.totals() == [sum(a for a, _ in inside), sum(b for _, b in inside)]
