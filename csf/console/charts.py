"""The live view's small charts: a series' points as SVG polylines, no script library.

Each chart is scaled to its own highest value; the newest point is at the right edge and
a full ring spans the width. What a chart's SVG carries is numbers this module formats,
so the template has nothing to escape in it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from csf.console.series import POINTS, Point, Series

WIDTH = 240
HEIGHT = 60
BREAKER = {None: "n/a", 0: "closed", 1: "half-open", 2: "open"}


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    value: str  # the newest figure as text; "-" before there is one
    top: str  # the highest figure, the chart's top, as text
    points: str  # the polyline's `points`


@dataclass(frozen=True)
class LiveView:
    charts: list[Chart]
    breaker: str
    intervals: int  # how many points the charts hold


def polyline(values: Sequence[float | None]) -> str:
    """`points` for the values, oldest first (None: no figure, skipped), scaled so
    that the highest touches the top; an all-zero series lies on the bottom."""
    top = max((v for v in values if v is not None), default=0.0)
    step = WIDTH / (POINTS - 1)
    start = POINTS - len(values)
    coordinates = []
    for index, value in enumerate(values):
        if value is None:
            continue
        y = HEIGHT - (value / top * HEIGHT if top > 0 else 0.0)
        coordinates.append(f"{(start + index) * step:.1f},{y:.1f}")
    return " ".join(coordinates)


def _rate(value: float) -> str:
    return f"{value:.1f}/s"


def _ratio(value: float) -> str:
    return f"{value * 100:.1f}%"


def _ms(value: float) -> str:
    return f"{value * 1000:.1f} ms"


_CHARTS: list[tuple[str, str, Callable[[Point], float | None], Callable[[float], str]]] = [
    ("calls", "Calls", lambda p: p.calls_per_s, _rate),
    ("errors", "Errors", lambda p: p.error_ratio, _ratio),
    ("p50", "p50 latency", lambda p: p.p50_s, _ms),
    ("p99", "p99 latency", lambda p: p.p99_s, _ms),
]


def live_view(series: Series) -> LiveView:
    """What the service page's live view shows of `series`."""
    charts = []
    for chart_id, title, figure, text in _CHARTS:
        values = [figure(p) for p in series.points]
        newest = values[-1] if values else None
        top = max((v for v in values if v is not None), default=None)
        charts.append(
            Chart(
                chart_id,
                title,
                "-" if newest is None else text(newest),
                "-" if top is None else text(top),
                polyline(values),
            )
        )
    return LiveView(charts, BREAKER.get(series.breaker, "n/a"), len(series.points))
