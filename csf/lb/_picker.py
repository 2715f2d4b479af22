"""The one interface of load balancing: a Picker built from an endpoint snapshot.

Weights mean the same to every balancer: an endpoint of weight 0 is drained (never
picked) unless every endpoint of the snapshot has weight 0, when all count alike.
Every balancer makes its natural choice in O(1) or O(log n). Only when that choice was
already tried by this call, or cannot connect, does it look further, in tiers: usable
and untried; else untried (all are failing: panic, pick among them anyway); else any.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Sequence

from csf._invocation import BalancerFactory, Invocation, Picker
from csf.endpoint import Endpoint

__all__ = ["BalancerFactory", "Picker", "SnapshotPicker", "fallback_candidates", "weighted_choice"]


def fallback_candidates(endpoints: Sequence[Endpoint], inv: Invocation) -> Sequence[Endpoint]:
    untried = [e for e in endpoints if e.address not in inv.tried] if inv.tried else endpoints
    usable = [e for e in untried if e.usable]
    return usable or untried or endpoints


def weighted_choice(candidates: Sequence[Endpoint]) -> Endpoint:
    """Random by effective weight; uniform when every weight is zero."""
    weights = [max(0, endpoint.weight) for endpoint in candidates]
    if not any(weights):
        return random.choice(candidates)
    return random.choices(candidates, weights)[0]


class SnapshotPicker(ABC):
    """The shared shape of the balancers: a natural choice, and tiers when it will not do.

    `weights[i]` is the weight `endpoints[i]` counts for (1 each when every weight is 0);
    `equal` says they are all the same, for balancers with a cheaper path then.
    """

    __slots__ = ("endpoints", "equal", "weights")

    def __init__(self, endpoints: Sequence[Endpoint]) -> None:
        snapshot = tuple(endpoints)
        self.endpoints = tuple(e for e in snapshot if e.weight > 0) or snapshot
        self.weights = tuple(max(1, endpoint.weight) for endpoint in self.endpoints)
        self.equal = len(set(self.weights)) <= 1

    def pick(self, inv: Invocation) -> Endpoint | None:
        if not self.endpoints:
            return None
        chosen = self.choose(inv)
        if (not inv.tried or chosen.address not in inv.tried) and chosen.usable:
            return chosen
        return self.choose_among(fallback_candidates(self.endpoints, inv), inv)

    @abstractmethod
    def choose(self, inv: Invocation) -> Endpoint:
        """The balancer's own choice among all endpoints (there is at least one)."""

    def choose_among(self, candidates: Sequence[Endpoint], inv: Invocation) -> Endpoint:
        """The choice among the candidates the tiers left; weighted random unless overridden."""
        return weighted_choice(candidates)

    def close(self) -> None:
        """Nothing to release: only pickers that watch endpoint load hold on to them."""
        return None


class LoadWatchingPicker(SnapshotPicker):
    """A picker told of every call that begins or ends on its endpoints, until closed."""

    __slots__ = ()

    def watch(self) -> None:
        """Start hearing of calls; subclasses call it once their own state is built."""
        for endpoint in self.endpoints:
            endpoint.watchers.append(self._moved)

    @abstractmethod
    def _moved(self, endpoint: Endpoint, change: int) -> None:
        """`endpoint`'s calls in flight moved by `change` (+1 or -1)."""

    def close(self) -> None:
        for endpoint in self.endpoints:
            if self._moved in endpoint.watchers:  # bound methods compare by self and function
                endpoint.watchers.remove(self._moved)
