"""Weights mean the same to every balancer: 0 drains, otherwise shares follow weight."""

import math
from collections import Counter
from typing import Any

import pytest

from csf.lb import BALANCERS
from csf.lb._random import RandomPicker
from csf.lb.consistent_hash import LOAD_BOUND, BoundedConsistentHashPicker, ConsistentHashPicker
from csf.lb.least_active import LeastActivePicker
from csf.lb.p2c_ewma import P2CEwmaPicker
from csf.lb.round_robin import RoundRobinPicker
from tests.lb.fakes import FakeEndpoint, invocation, within

ALL = sorted(BALANCERS)
TOLERANCE = 0.15  # at least three binomial sigmas of the smallest share below


def _weighted(*weights: int) -> list[Any]:
    return [FakeEndpoint(f"10.0.0.{i}:1", weight=w) for i, w in enumerate(weights)]


def _keyed_shares(picker: Any, picks: int) -> Counter[str]:
    """Picks with a different key each (the hash balancers spread keys, not calls)."""
    return Counter(picker.pick(invocation(key=f"user-{i}")).address for i in range(picks))


@pytest.mark.parametrize("name", ALL)
def test_a_weight_of_zero_gets_no_picks_from_any_balancer(name: str) -> None:
    pool = _weighted(100, 0, 50)
    picker = BALANCERS[name](pool)
    keyed = _keyed_shares(picker, 3_000)
    keyless = Counter(picker.pick(invocation()).address for _ in range(1_000))  # type: ignore[union-attr]
    assert set(keyed) | set(keyless) <= {pool[0].address, pool[2].address}
    assert pool[0].address in keyed  # the others still get calls


@pytest.mark.parametrize("name", ALL)
def test_a_weight_of_zero_gets_no_retry_either(name: str) -> None:
    pool = _weighted(100, 0, 50)
    picker = BALANCERS[name](pool)
    tried = {pool[0].address}
    assert {picker.pick(invocation(tried, key=str(i))) for i in range(200)} == {pool[2]}


@pytest.mark.parametrize("name", ALL)
def test_when_every_weight_is_zero_every_endpoint_is_used(name: str) -> None:
    pool = _weighted(0, 0, 0)
    counts = _keyed_shares(BALANCERS[name](pool), 3_000)
    assert set(counts) == {endpoint.address for endpoint in pool}
    assert all(count >= 500 for count in counts.values()), counts  # alike: ~1,000 each


def test_round_robin_gives_turns_in_proportion_to_weight() -> None:
    pool = _weighted(1, 2, 3)
    picker = RoundRobinPicker(pool)
    counts = Counter(picker.pick(invocation()).address for _ in range(6_000))  # type: ignore[union-attr]
    for endpoint, target in zip(pool, (1_000, 2_000, 3_000), strict=True):
        assert abs(counts[endpoint.address] - target) <= 2, counts


def test_random_picks_in_proportion_to_weight() -> None:
    pool = _weighted(1, 2, 7)
    counts = Counter(RandomPicker(pool).pick(invocation()).address for _ in range(10_000))  # type: ignore[union-attr]
    for endpoint, target in zip(pool, (1_000, 2_000, 7_000), strict=True):
        assert within(counts[endpoint.address], target, TOLERANCE), counts


@pytest.mark.parametrize("picker", [ConsistentHashPicker, BoundedConsistentHashPicker])
def test_consistent_hash_gives_each_provider_keys_in_proportion_to_weight(picker: Any) -> None:
    pool: list[Any] = [
        FakeEndpoint(f"10.0.2.{i}:50051", weight=w) for i, w in enumerate((100, 100, 300))
    ]
    keyed = _keyed_shares(picker(pool), 20_000)
    # 160 virtual nodes for the heaviest (53 for the others) leave shares ~20% off.
    for endpoint, share in zip(pool, (0.2, 0.2, 0.6), strict=True):
        assert within(keyed[endpoint.address], share * 20_000, 0.25), keyed
    # Calls without a key land on random points of the same ring.
    keyless = Counter(picker(pool).pick(invocation()).address for _ in range(10_000))
    for endpoint in pool:
        assert within(keyless[endpoint.address], keyed[endpoint.address] / 2, TOLERANCE)


def test_consistent_hash_with_weights_is_the_same_in_independent_consumers() -> None:
    pool: list[Any] = [
        FakeEndpoint(f"10.0.3.{i}:50051", weight=w) for i, w in enumerate((10, 50, 100, 7))
    ]
    first = _keyed_shares(ConsistentHashPicker(pool), 2_000)
    second = _keyed_shares(ConsistentHashPicker(list(reversed(pool))), 2_000)
    assert first == second


def test_p2c_ewma_at_equal_latency_keeps_calls_in_flight_in_proportion_to_weight() -> None:
    pool: list[Any] = [
        FakeEndpoint(f"10.0.0.{i}:1", weight=w, ewma=0.01) for i, w in enumerate((1, 2, 5))
    ]
    picker = P2CEwmaPicker(pool)
    for _ in range(800):  # calls that stay in flight: the load p2c weighs
        chosen: Any = picker.pick(invocation())  # a FakeEndpoint
        chosen.begin()
    for endpoint, target in zip(pool, (100, 200, 500), strict=True):
        assert within(endpoint.active, target, TOLERANCE), [e.active for e in pool]


def test_bounded_consistent_hash_bounds_each_provider_by_its_weight_s_share() -> None:
    pool: list[Any] = [
        FakeEndpoint(f"10.0.4.{i}:1", weight=w) for i, w in enumerate((300, 100, 100, 100))
    ]
    picker = BoundedConsistentHashPicker(pool)
    for calls in range(1, 401):
        chosen: Any = picker.pick(invocation(key="hot"))  # a FakeEndpoint
        chosen.begin()  # the hot key's calls stay in flight
        for endpoint in pool:
            assert endpoint.active <= math.ceil(LOAD_BOUND * calls * endpoint.weight / 600)


def test_closing_a_least_active_picker_removes_its_watcher_and_no_other() -> None:
    pool = _weighted(1, 1)
    old, new = LeastActivePicker(pool), LeastActivePicker(pool)
    old.close()
    assert all(endpoint.watchers == [new._moved] for endpoint in pool)
    pool[0].begin()  # only the live picker hears of it, and steers away
    assert {new.pick(invocation()) for _ in range(50)} == {pool[1]}
    old.close()  # a second close changes nothing
    assert all(len(endpoint.watchers) == 1 for endpoint in pool)


@pytest.mark.parametrize("name", ALL)
def test_a_closed_picker_leaves_no_watcher_behind(name: str) -> None:
    pool = _weighted(1, 2, 3)
    BALANCERS[name](pool).close()
    assert all(endpoint.watchers == [] for endpoint in pool)
