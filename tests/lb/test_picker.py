"""What the balancers share: finding one by name, and weighted choice among candidates."""

import pytest

from csf import ConfigError
from csf.lb import BALANCERS, balancer
from csf.lb._picker import weighted_choice
from tests.lb.fakes import FakeEndpoint, within

KNOWN = (
    "consistent_hash, consistent_hash_bounded, least_active, p2c_ewma, random, round_robin, "
    "weighted_random, weighted_round_robin"
)


def test_a_balancer_is_found_by_its_name() -> None:
    assert all(balancer(name) is factory for name, factory in BALANCERS.items())


def test_an_unknown_balancer_names_the_field_and_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        balancer("fastest")
    assert str(caught.value) == f"lb: unknown balancer 'fastest'; known: {KNOWN}"
    with pytest.raises(ConfigError, match=r"^methods\['M'\]\.lb: unknown balancer 'x'"):
        balancer("x", field="methods['M'].lb")


def test_weighted_choice_follows_the_weights_and_never_picks_a_weight_of_zero() -> None:
    pool = [FakeEndpoint("a:1", weight=1), FakeEndpoint("b:1", weight=3)]
    picks = [weighted_choice([*pool, FakeEndpoint("z:1", weight=0)]) for _ in range(4_000)]
    assert {pick.address for pick in picks} == {"a:1", "b:1"}
    assert within(sum(pick is pool[1] for pick in picks), 3_000, 0.1)


def test_weighted_choice_is_uniform_when_every_weight_is_zero() -> None:
    pool = [FakeEndpoint(f"{name}:1", weight=0) for name in "abcd"]
    picks = [weighted_choice(pool) for _ in range(4_000)]
    assert all(within(sum(p is e for p in picks), 1_000, 0.15) for e in pool)
