"""Each balancer's distribution over 10,000 picks, against its target."""

import itertools
import random
from typing import Any

import pytest

from csf.lb._random import RandomPicker
from csf.lb.least_active import LeastActivePicker
from csf.lb.p2c_ewma import P2CEwmaPicker
from csf.lb.weighted_random import WeightedRandomPicker
from csf.lb.weighted_round_robin import WeightedRoundRobinPicker
from tests.lb.fakes import FakeEndpoint, endpoints, invocation, shares, within

# Binomial spread of 10,000 picks is at most 50; 15% of the smallest share below is
# 150 or more, three sigma at least: the statistical checks do not flake.
TOLERANCE = 0.15


def _weighted(*weights: int) -> list[Any]:
    return [FakeEndpoint(f"10.0.0.{i}:1", weight=w) for i, w in enumerate(weights)]


def test_random_is_equal_within_tolerance() -> None:
    counts = shares(RandomPicker(endpoints(4)))
    assert all(within(count, 2_500, TOLERANCE) for count in counts.values())
    assert len(counts) == 4


def test_weighted_random_follows_the_weights() -> None:
    pool = _weighted(1, 2, 7, 0)
    counts = shares(WeightedRandomPicker(pool))
    for endpoint, expected in zip(pool, (1_000, 2_000, 7_000), strict=False):
        assert within(counts[endpoint.address], expected, TOLERANCE)
    assert counts[pool[3].address] == 0


def test_weighted_round_robin_is_exact() -> None:
    pool = _weighted(5, 1, 1)
    counts = shares(WeightedRoundRobinPicker(pool), 7_000)
    targets = (5_000, 1_000, 1_000)
    assert all(abs(counts[e.address] - t) <= 2 for e, t in zip(pool, targets, strict=True))


def test_weighted_round_robin_is_smooth() -> None:
    for _ in range(20):
        pool = _weighted(5, 1, 1)
        picker = WeightedRoundRobinPicker(pool)
        picks = [picker.pick(invocation()) for _ in range(70)]
        # nginx's smooth weighted round robin also runs to 4 across its cycles.
        assert max(len(list(run)) for _, run in itertools.groupby(picks)) <= 4
    rng = random.Random(7)
    for _ in range(50):
        weights = [rng.randint(1, 100) for _ in range(rng.randint(2, 8))]
        pool = _weighted(*weights)
        picker = WeightedRoundRobinPicker(pool)
        counts = dict.fromkeys(pool, 0)
        total = sum(weights)
        for step in range(1, 2 * total + 1):
            counts[picker.pick(invocation())] += 1  # type: ignore[index]
            lag = max(abs(counts[e] - step * e.weight / total) for e in pool)
            assert lag <= 2, f"weights {weights}: {lag:.2f} calls off its share"


def test_least_active_prefers_idle_endpoints() -> None:
    pool = endpoints(4)
    picker = LeastActivePicker(pool)
    for _ in range(3):
        pool[0].begin()
    for _ in range(5):
        pool[2].begin()
    counts = shares(picker)
    assert set(counts) == {pool[1].address, pool[3].address}
    assert within(counts[pool[1].address], 5_000, TOLERANCE)


def test_least_active_tracks_calls_as_they_begin_and_end() -> None:
    pool = endpoints(5)
    picker = LeastActivePicker(pool)
    in_flight = []
    for step in range(10_000):
        chosen = picker.pick(invocation())
        assert chosen is not None
        assert chosen.active == min(endpoint.active for endpoint in pool)
        chosen.begin()
        in_flight.append(chosen)
        if step % 3 == 0:  # calls end out of order
            in_flight.pop(step % len(in_flight)).end()


def test_least_active_breaks_ties_by_weight() -> None:
    pool = _weighted(1, 3)
    counts = shares(LeastActivePicker(pool))
    assert within(counts[pool[1].address], 7_500, TOLERANCE)


def test_p2c_ewma_prefers_the_faster_endpoint() -> None:
    pool = endpoints(4, ewma=0.001)
    pool[0].ewma = 0.100
    counts = shares(P2CEwmaPicker(pool))
    assert counts[pool[0].address] == 0
    assert all(within(counts[e.address], 10_000 / 3, TOLERANCE) for e in pool[1:])
    # Load counts too: a fast endpoint with many calls in flight loses to an idle one.
    pool[1].active = 200
    assert shares(P2CEwmaPicker(pool))[pool[1].address] == 0


@pytest.mark.parametrize("picker", [WeightedRandomPicker, WeightedRoundRobinPicker])
def test_a_weight_of_zero_gets_no_calls(picker: Any) -> None:
    pool = _weighted(1, 0)
    assert set(shares(picker(pool), 1_000)) == {pool[0].address}


def test_least_active_breaks_a_tie_away_from_a_weight_of_zero() -> None:
    pool = _weighted(1, 0)
    assert set(shares(LeastActivePicker(pool), 1_000)) == {pool[0].address}


@pytest.mark.parametrize("picker", [WeightedRandomPicker, WeightedRoundRobinPicker])
def test_when_every_weight_is_zero_calls_spread_evenly(picker: Any) -> None:
    counts = shares(picker(_weighted(0, 0, 0, 0)), 4_000)
    assert len(counts) == 4 and all(within(c, 1_000, TOLERANCE) for c in counts.values())


def test_weighted_round_robin_starts_consumers_at_different_endpoints() -> None:
    pool = _weighted(1, 1, 1, 1)
    firsts = {WeightedRoundRobinPicker(pool).pick(invocation()) for _ in range(200)}
    assert len(firsts) == 4


def test_p2c_ewma_shares_evenly_among_equal_endpoints() -> None:
    counts = shares(P2CEwmaPicker(endpoints(4, ewma=0.01)), 4_000)
    assert len(counts) == 4 and all(within(c, 1_000, TOLERANCE) for c in counts.values())


def test_p2c_ewma_with_one_endpoint_picks_it() -> None:
    pool = endpoints(1, ewma=0.01)
    assert shares(P2CEwmaPicker(pool), 10) == {pool[0].address: 10}


def test_p2c_ewma_costs_latency_times_calls_in_flight_plus_one() -> None:
    slow_idle, fast_busy = FakeEndpoint("a:1", ewma=1.0), FakeEndpoint("b:1", ewma=0.3, active=2)
    # 1.0 x (0 + 1) > 0.3 x (2 + 1): the busy one is cheaper
    assert set(shares(P2CEwmaPicker([slow_idle, fast_busy]), 100)) == {"b:1"}
    fast_busy.active = 3  # 0.3 x 4 > 1.0
    assert set(shares(P2CEwmaPicker([slow_idle, fast_busy]), 100)) == {"a:1"}
