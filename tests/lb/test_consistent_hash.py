from typing import Any

from csf.lb.consistent_hash import (
    LOAD_BOUND,
    BoundedConsistentHashPicker,
    ConsistentHashPicker,
    hash_key,
)
from tests.lb.fakes import FakeEndpoint, endpoints, invocation

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
