"""p2c_ewma: of two random endpoints, the one with the lower peak-EWMA latency x load.

Finagle's and Kitex's "power of two choices": cost = ewma latency x (in flight + 1).
An endpoint not yet measured costs nothing, so new providers are tried soon.
"""

from __future__ import annotations

import random

from csf._invocation import Invocation
from csf.endpoint import Endpoint
from csf.lb._picker import SnapshotPicker

name = "p2c_ewma"


def _cost(endpoint: Endpoint) -> float:
    return endpoint.ewma * (endpoint.active + 1)


class P2CEwmaPicker(SnapshotPicker):
    __slots__ = ()

    def choose(self, inv: Invocation) -> Endpoint:
        endpoints = self.endpoints
        count = len(endpoints)
        if count == 1:
            return endpoints[0]
        first = int(random.random() * count)
        second = int(random.random() * (count - 1))
        if second >= first:
            second += 1
        a, b = endpoints[first], endpoints[second]
        return a if _cost(a) <= _cost(b) else b
