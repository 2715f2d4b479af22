"""weighted_round_robin: smooth weighted round robin, as nginx and Dubbo spread it.

Earliest-deadline-first over a heap (as Envoy does it): an endpoint of weight w is due
every 1/w, in O(log n) a pick. First due dates are staggered (endpoint i at (i + 1/2)/n of
its period), which keeps every endpoint within two calls of its exact share at all times
(nginx's O(n) method: within one); weights 5:1:1 give a a a b a a c, not five a in a row.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Sequence

from csf._invocation import Invocation
from csf.endpoint import Endpoint
from csf.lb._picker import SnapshotPicker

name = "weighted_round_robin"


class WeightedRoundRobinPicker(SnapshotPicker):
    __slots__ = ("_due", "_periods")

    def __init__(self, endpoints: Sequence[Endpoint]) -> None:
        super().__init__(endpoints)
        self._periods = [1.0 / weight for weight in self.weights]
        count = len(self._periods)
        # A random rotation of the stagger keeps consumers from starting in lockstep.
        rotation = random.randrange(count) if count else 0
        self._due = [
            ((((index + rotation) % count) + 0.5) / count * period, index)
            for index, period in enumerate(self._periods)
        ]
        heapq.heapify(self._due)

    def choose(self, inv: Invocation) -> Endpoint:
        due, index = self._due[0]
        heapq.heapreplace(self._due, (due + self._periods[index], index))
        return self.endpoints[index]
