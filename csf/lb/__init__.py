"""Load balancing: one module per balancer, each building a Picker from a snapshot."""

from __future__ import annotations

from collections.abc import Mapping

from csf._exceptions import ConfigError
from csf.lb import (
    _random,
    consistent_hash,
    least_active,
    p2c_ewma,
    round_robin,
    weighted_random,
    weighted_round_robin,
)
from csf.lb._filter import LoadBalanceFilter
from csf.lb._picker import BalancerFactory, Picker

__all__ = ["BALANCERS", "BalancerFactory", "LoadBalanceFilter", "Picker", "balancer"]

BALANCERS: Mapping[str, BalancerFactory] = {
    round_robin.name: round_robin.RoundRobinPicker,
    _random.name: _random.RandomPicker,
    weighted_round_robin.name: weighted_round_robin.WeightedRoundRobinPicker,
    weighted_random.name: weighted_random.WeightedRandomPicker,
    least_active.name: least_active.LeastActivePicker,
    consistent_hash.name: consistent_hash.ConsistentHashPicker,
    consistent_hash.bounded_name: consistent_hash.BoundedConsistentHashPicker,
    p2c_ewma.name: p2c_ewma.P2CEwmaPicker,
}


def balancer(name: str, *, field: str = "lb") -> BalancerFactory:
    """The balancer called `name`; raises ConfigError listing the known ones."""
    try:
        return BALANCERS[name]
    except KeyError:
        known = ", ".join(sorted(BALANCERS))
        raise ConfigError(f"{field}: unknown balancer {name!r}; known: {known}") from None
