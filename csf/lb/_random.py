"""random: any endpoint, uniformly; in proportion to weight when the weights differ."""

from __future__ import annotations

import random
from collections.abc import Sequence

from csf._invocation import Invocation
from csf.endpoint import Endpoint
from csf.lb._picker import SnapshotPicker
from csf.lb.weighted_random import WeightedRandomPicker

name = "random"


class RandomPicker(SnapshotPicker):
    __slots__ = ("_weighted",)

    def __init__(self, endpoints: Sequence[Endpoint]) -> None:
        super().__init__(endpoints)
        self._weighted = None if self.equal else WeightedRandomPicker(self.endpoints)

    def choose(self, inv: Invocation) -> Endpoint:
        if self._weighted is not None:
            return self._weighted.choose(inv)
        return self.endpoints[int(random.random() * len(self.endpoints))]
