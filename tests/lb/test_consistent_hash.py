from typing import Any

import pytest

from csf.lb.consistent_hash import (
    LOAD_BOUND,
    BoundedConsistentHashPicker,
    ConsistentHashPicker,
    Ring,
    hash_key,
)
from tests.lb.fakes import FakeEndpoint, endpoints, invocation, shares

KEYS = [f"user-{index}" for index in range(10_000)]


def _mapping(picker: Any) -> dict[str, str]:
    return {key: picker.pick(invocation(key=key)).address for key in KEYS}


def test_the_same_key_maps_to_the_same_provider_in_independent_consumers() -> None:
    first = ConsistentHashPicker(endpoints(8))
    second = ConsistentHashPicker(list(reversed(endpoints(8))))
    assert _mapping(first) == _mapping(second)
    assert len(set(_mapping(first).values())) == 8


def test_adding_one_node_to_n_remaps_about_one_nth(figures: list[str]) -> None:
    for n in (5, 10, 20):
        before = _mapping(ConsistentHashPicker(endpoints(n)))
        after = _mapping(ConsistentHashPicker(endpoints(n + 1)))
        moved = sum(before[key] != after[key] for key in KEYS) / len(KEYS)
        figures.append(f"consistent_hash: adding 1 node to {n} remapped {moved:.3f} of keys")
        assert moved < 2 / n


def test_the_key_comes_from_the_hash_key_or_the_metadata() -> None:
    inv = invocation()
    inv.metadata = [("x-csf-hash-key", "from-metadata")]
    assert hash_key(inv) == "from-metadata"
    inv.hash_key = "from-stub"
    assert hash_key(inv) == "from-stub"


def test_bounded_load_keeps_every_node_under_its_bound_for_a_hot_key() -> None:
    pool: list[Any] = [FakeEndpoint(f"10.0.0.{i}:1") for i in range(8)]
    plain = ConsistentHashPicker(pool)
    assert len({plain.pick(invocation(key="hot")).address for _ in range(50)}) == 1

    bounded = BoundedConsistentHashPicker(pool)
    for calls in range(1, 401):
        chosen = bounded.pick(invocation(key="hot"))
        assert chosen is not None
        chosen.begin()  # the hot key's calls stay in flight
        bound = -(-LOAD_BOUND * calls // len(pool))  # ceil
        assert max(endpoint.active for endpoint in pool) <= bound
    # It spills along the ring only as far as it must: 400 calls at ~63 a node fill 7.
    assert sum(endpoint.active > 0 for endpoint in pool) >= 6


ADDRESSES = [f"10.0.1.{index}:50051" for index in range(9)]


def _equal(addresses: list[str]) -> dict[str, int]:
    return dict.fromkeys(addresses, 100)


def test_a_ring_is_reused_while_the_providers_stay_the_same() -> None:
    assert Ring.of(_equal(ADDRESSES)) is Ring.of(_equal(ADDRESSES))


def test_a_ring_edited_from_the_last_one_is_the_ring_built_afresh(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def afresh(weights: dict[str, int]) -> Ring:
        monkeypatch.setattr(Ring, "last", None)
        return Ring.of(weights)

    eight, nine = afresh(_equal(ADDRESSES[:8])), afresh(_equal(ADDRESSES))
    monkeypatch.setattr(Ring, "last", eight)
    added = Ring.of(_equal(ADDRESSES))  # one node of nine changed: edited
    assert (added.points, added.owners) == (nine.points, nine.owners)
    removed = Ring.of(_equal(ADDRESSES[:8]))  # edited back
    assert (removed.points, removed.owners) == (eight.points, eight.owners)
    assert len(nine.points) == 9 * 160, "160 virtual nodes each"
    reweighted = {**_equal(ADDRESSES), ADDRESSES[0]: 25}
    fresh = afresh(reweighted)
    monkeypatch.setattr(Ring, "last", nine)
    edited = Ring.of(reweighted)  # one node's weight changed: edited
    assert (edited.points, edited.owners) == (fresh.points, fresh.owners)
    assert len(fresh.points) == 8 * 160 + 40, "virtual nodes in proportion to weight"


def test_a_walk_meets_every_owner_once_starting_with_the_keys_own() -> None:
    ring = Ring.of(_equal(ADDRESSES))
    for key in KEYS[:100]:
        walk = list(ring.walk(key))
        assert sorted(walk) == sorted(ADDRESSES)
        assert walk[0] == ring.owner(key)


@pytest.mark.parametrize("picker", [ConsistentHashPicker, BoundedConsistentHashPicker])
def test_a_key_whose_owner_was_tried_goes_where_it_would_without_that_owner(
    picker: Any,
) -> None:
    pool = endpoints(8)
    full = picker(pool)
    for key in KEYS[:200]:
        owner = full.pick(invocation(key=key))
        without = ConsistentHashPicker([e for e in pool if e is not owner])
        expected = without.pick(invocation(key=key))
        assert full.pick(invocation({owner.address}, key=key)) is expected


def test_bounded_load_without_load_maps_keys_as_plain_consistent_hashing() -> None:
    pool = endpoints(8)
    assert _mapping(BoundedConsistentHashPicker(pool)) == _mapping(ConsistentHashPicker(pool))


def test_bounded_load_keeps_the_keys_own_provider_when_every_one_is_over_the_bound() -> None:
    pool = endpoints(4)
    bounded = BoundedConsistentHashPicker(pool)
    owners = _mapping(ConsistentHashPicker(pool))
    for endpoint in pool:
        endpoint.active = 10  # loads it was not told of: every one is over the bound
    assert _mapping(bounded) == owners


@pytest.mark.parametrize("picker", [ConsistentHashPicker, BoundedConsistentHashPicker])
def test_calls_without_a_key_go_to_any_provider(picker: Any) -> None:
    pool = endpoints(4)
    assert len(shares(picker(pool), 400)) == 4


def test_a_key_in_binary_metadata_is_decoded() -> None:
    inv = invocation()
    inv.metadata = [("other", "x"), ("x-csf-hash-key", b"user-7")]
    assert hash_key(inv) == "user-7"
    assert hash_key(invocation()) is None
