"""p2c_ewma: of two random endpoints, the one with the lower peak-EWMA cost per weight.

Finagle's and Kitex's "power of two choices": cost = ewma latency x (in flight + 1),
divided by the endpoint's weight, so at equal latency calls in flight settle in
proportion to weight. An endpoint not yet measured costs nothing, so new providers are
tried soon.
"""

from __future__ import annotations

import random

from csf._invocation import Invocation
from csf.endpoint import Endpoint
from csf.lb._picker import SnapshotPicker

name = "p2c_ewma"


def _cost(endpoint: Endpoint, weight: int) -> float:
    return endpoint.ewma * (endpoint.active + 1) / weight


class P2CEwmaPicker(SnapshotPicker):
    __slots__ = ()

    def choose(self, inv: Invocation) -> Endpoint:
        endpoints, weights = self.endpoints, self.weights
        count = len(endpoints)
        if count == 1:
            return endpoints[0]
        first = int(random.random() * count)
        second = int(random.random() * (count - 1))
        if second >= first:
            second += 1
        a, b = endpoints[first], endpoints[second]
        return a if _cost(a, weights[first]) <= _cost(b, weights[second]) else b
