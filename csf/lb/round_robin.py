"""round_robin: each endpoint in turn; smooth weighted turns when the weights differ."""

from __future__ import annotations

import random
from collections.abc import Sequence

from csf._invocation import Invocation
from csf.endpoint import Endpoint
from csf.lb._picker import SnapshotPicker
from csf.lb.weighted_round_robin import WeightedRoundRobinPicker

name = "round_robin"


class RoundRobinPicker(SnapshotPicker):
    __slots__ = ("_next", "_weighted")

    def __init__(self, endpoints: Sequence[Endpoint]) -> None:
        super().__init__(endpoints)
        self._weighted = None if self.equal else WeightedRoundRobinPicker(self.endpoints)
        # A random start keeps many consumers from all opening on the same provider.
        self._next = random.randrange(len(self.endpoints)) if self.endpoints else 0

    def choose(self, inv: Invocation) -> Endpoint:
        if self._weighted is not None:
            return self._weighted.choose(inv)
        index = self._next
        self._next = (index + 1) % len(self.endpoints)
        return self.endpoints[index]
