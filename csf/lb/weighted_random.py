"""weighted_random: any endpoint, with probability proportional to its weight."""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate

from csf._invocation import Invocation
from csf.endpoint import Endpoint
from csf.lb._picker import SnapshotPicker

name = "weighted_random"


class WeightedRandomPicker(SnapshotPicker):
    __slots__ = ("_cumulative", "_total")

    def __init__(self, endpoints: Sequence[Endpoint]) -> None:
        super().__init__(endpoints)
        self._cumulative = list(accumulate(self.weights))
        self._total = self._cumulative[-1] if self._cumulative else 0

    def choose(self, inv: Invocation) -> Endpoint:
        return self.endpoints[bisect_right(self._cumulative, random.random() * self._total)]
