"""The one interface of load balancing: a Picker built from an endpoint snapshot.

Every balancer makes its natural choice in O(1) or O(log n). Only when that choice was
already tried by this call, or cannot connect, does it look further, in tiers: usable
and untried; else untried (all are failing: panic, pick among them anyway); else any.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Protocol

from csf._invocation import Invocation
from csf.endpoint import Endpoint


class Picker(Protocol):
    """Chooses the endpoint for one attempt; built once per snapshot, read on every call."""

    endpoints: tuple[Endpoint, ...]

    def pick(self, inv: Invocation) -> Endpoint | None:
        """An endpoint, preferring usable ones not in `inv.tried`; None only if none exist."""


BalancerFactory = Callable[[Sequence[Endpoint]], Picker]


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
    """The shared shape of the balancers: a natural choice, and tiers when it will not do."""

    __slots__ = ("endpoints",)

    def __init__(self, endpoints: Sequence[Endpoint]) -> None:
        self.endpoints = tuple(endpoints)

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
