"""Figures over an interval from two readings: rates, error ratio, quantiles; the ring."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from csf.console.exposition import Reading
from csf.console.series import POINTS, Point, Series, delta, quantile

INF = math.inf


def test_the_rate_is_the_counter_s_growth_over_the_seconds_between_scrapes() -> None:
    series = Series()
    series.add(10.0, {"a": Reading(100, 0, {}, None), "b": Reading(50, 0, {}, None)})
    assert not series.points, "the first scrape is a baseline only"
    series.add(12.0, {"a": Reading(120, 4, {}, None), "b": Reading(70, 0, {}, None)})
    (point,) = series.points
    assert point.calls_per_s == 20.0
    assert point.error_ratio == 4 / 40


def test_an_endpoint_seen_for_the_first_time_is_a_baseline_and_a_restart_counts_anew() -> None:
    series = Series()
    series.add(0.0, {"a": Reading(100, 0, {}, None)})
    series.add(1.0, {"a": Reading(3, 1, {}, None), "new": Reading(1000, 0, {}, None)})
    assert series.points[-1] == Point(3.0, 1 / 3, None, None)


def test_a_delta_takes_each_bucket_s_growth() -> None:
    before = Reading(10, 1, {0.01: 5, INF: 10}, 2)
    after = Reading(30, 1, {0.01: 5, 0.1: 4, INF: 30}, 0)
    assert delta(before, after) == Reading(20, 0, {0.01: 0, 0.1: 4, INF: 20}, None)


def test_quantiles_interpolate_in_their_bucket_like_histogram_quantile() -> None:
    buckets = {0.01: 50, 0.1: 90, 1.0: 100, INF: 100}
    assert quantile(0.5, buckets) == pytest.approx(0.01)
    assert quantile(0.7, buckets) == pytest.approx(0.055)
    assert quantile(0.99, buckets) == pytest.approx(0.91)
    assert quantile(0.99, {0.5: 1, INF: 100}) == 0.5, "a rank past the last bound: that bound"
    assert quantile(0.5, {0.5: 0, INF: 0}) is None
    assert quantile(0.5, {}) is None


@given(st.dictionaries(st.floats(0, 1e6) | st.just(INF), st.floats(0, 1e15), max_size=20),
       st.floats(0, 1))  # fmt: skip
def test_a_quantile_lies_within_the_histogram_s_finite_bounds(
    buckets: dict[float, float], q: float
) -> None:
    found = quantile(q, buckets)
    finite = [b for b in buckets if not math.isinf(b)]
    if found is not None:
        assert 0 <= found <= max(finite, default=0.0)


def test_the_ring_keeps_the_last_points_only_and_the_breaker_of_the_last_scrape() -> None:
    series = Series()
    for second in range(POINTS + 10):
        series.add(float(second), {"a": Reading(second * 2, 0, {}, 2 if second < 5 else 0)})
    assert len(series.points) == POINTS
    assert series.points[-1].calls_per_s == 2.0
    assert series.breaker == 0
    series.add(POINTS + 10.0, {})
    assert series.breaker is None
