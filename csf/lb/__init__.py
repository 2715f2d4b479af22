"""Load balancing: one module per balancer, each building a Picker from a snapshot."""

from __future__ import annotations

from collections.abc import Mapping

from csf._exceptions import ConfigError
from csf.lb import round_robin
from csf.lb._filter import LoadBalanceFilter
from csf.lb._picker import BalancerFactory, Picker

__all__ = ["BALANCERS", "BalancerFactory", "LoadBalanceFilter", "Picker", "balancer"]

BALANCERS: Mapping[str, BalancerFactory] = {
    round_robin.name: round_robin.RoundRobinPicker,
}


def balancer(name: str, *, field: str = "lb") -> BalancerFactory:
    """The balancer called `name`; raises ConfigError listing the known ones."""
    try:
        return BALANCERS[name]
    except KeyError:
        known = ", ".join(sorted(BALANCERS))
        raise ConfigError(f"{field}: unknown balancer {name!r}; known: {known}") from None
