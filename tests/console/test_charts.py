"""The live view's SVG charts and figures."""

from __future__ import annotations

import pytest

from csf.console.charts import HEIGHT, WIDTH, live_view, polyline
from csf.console.exposition import Reading
from csf.console.series import POINTS, Series


def coordinates(points: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in (p.split(",") for p in points.split())]


def test_the_highest_value_touches_the_top_and_the_newest_is_at_the_right_edge() -> None:
    found = coordinates(polyline([1.0, 4.0, None, 2.0]))
    assert len(found) == 3, "a missing figure is skipped"
    x, y = found[1]
    assert x == pytest.approx(WIDTH / (POINTS - 1) * (POINTS - 3), abs=0.1)
    assert y == 0.0
    assert found[-1] == (WIDTH, HEIGHT / 2)
    assert all(y == HEIGHT for _, y in coordinates(polyline([0.0, 0.0])))
    assert polyline([]) == ""


def test_the_view_shows_the_newest_figures_and_the_breaker_by_name() -> None:
    series = Series()
    series.add(0.0, {"a": Reading(0, 0, {0.01: 0, float("inf"): 0}, 1)})
    empty = live_view(series)
    assert [c.value for c in empty.charts] == ["-"] * 4
    assert empty.breaker == "half-open"
    series.add(2.0, {"a": Reading(10, 1, {0.01: 10, float("inf"): 10}, None)})
    view = live_view(series)
    assert {c.id: c.value for c in view.charts} == {
        "calls": "5.0/s", "errors": "10.0%", "p50": "5.0 ms", "p99": "9.9 ms"
    }  # fmt: skip
    assert view.breaker == "n/a"
    assert view.intervals == 1
