"""A just-started provider's share grows with time (a fake clock: `now` is passed in)."""

from typing import Any

from csf.lb.warmup import warmed_weight, warming_left
from csf.lb.weighted_random import WeightedRandomPicker
from csf.registry import Instance
from tests.lb.fakes import FakeEndpoint, shares

STARTED = 1_000_000.0
WARMUP = 600.0
NEW = Instance(host="10.0.0.1", port=1, weight=100, start_time=STARTED, warmup=WARMUP)
OLD = Instance(host="10.0.0.2", port=1, weight=100, start_time=0.0, warmup=WARMUP)


def _share_of_new(now: float) -> float:
    pool: list[Any] = [
        FakeEndpoint(instance.address, weight=warmed_weight(instance, 100, now))
        for instance in (NEW, OLD)
    ]
    return shares(WeightedRandomPicker(pool))[NEW.address] / 10_000


def test_the_share_of_a_new_provider_grows_linearly_until_warm() -> None:
    observed = [_share_of_new(STARTED + elapsed) for elapsed in (1, 150, 300, 600, 900)]
    expected = [1 / 101, 25 / 125, 50 / 150, 0.5, 0.5]
    for seen, target in zip(observed, expected, strict=True):
        assert abs(seen - target) <= max(0.02, 0.15 * target)
    assert observed[0] < observed[1] < observed[2] < observed[3], "grows while warming"
    assert 0 < observed[0] < 0.05


def test_warmup_arithmetic() -> None:
    assert warmed_weight(NEW, 100, STARTED) == 1  # never 0: it must still be tried
    assert warmed_weight(NEW, 100, STARTED + 300) == 50
    assert warmed_weight(NEW, 0, STARTED + 300) == 0
    assert warmed_weight(OLD, 100, STARTED) == 100
    no_warmup = Instance(host="h", port=1, start_time=STARTED, warmup=0)
    assert warmed_weight(no_warmup, 100, STARTED) == 100
    assert warming_left(NEW, STARTED + 100) == 500
    assert warming_left(NEW, STARTED + 700) == 0


def test_a_provider_not_yet_started_by_this_clock_gets_the_least_weight() -> None:
    assert warmed_weight(NEW, 10_000, STARTED - 5) == 1  # the clocks disagree
    assert warmed_weight(NEW, 10_000, STARTED + 0.5) == 8  # 10,000 x 0.5 / 600


def test_a_short_warmup_still_ramps() -> None:
    short = Instance(host="h", port=1, start_time=STARTED, warmup=1.0)
    assert warmed_weight(short, 100, STARTED + 0.5) == 50
    assert warming_left(short, STARTED + 0.25) == 0.75


def test_no_warmup_means_full_weight_and_nothing_left_whatever_the_clock() -> None:
    no_warmup = Instance(host="h", port=1, start_time=STARTED, warmup=0)
    assert warmed_weight(no_warmup, 100, STARTED - 5) == 100
    assert warming_left(no_warmup, STARTED - 5) == 0
    assert warming_left(no_warmup, STARTED + 5) == 0
