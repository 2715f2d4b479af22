"""round_robin: each endpoint in turn."""

from __future__ import annotations

import random
from collections.abc import Sequence

from csf._invocation import Invocation
from csf.endpoint import Endpoint

name = "round_robin"


class RoundRobinPicker:
    __slots__ = ("_endpoints", "_next")

    def __init__(self, endpoints: Sequence[Endpoint]) -> None:
        self._endpoints = tuple(endpoints)
        # A random start keeps many consumers from all opening on the same provider.
        self._next = random.randrange(len(self._endpoints)) if self._endpoints else 0

    def pick(self, inv: Invocation) -> Endpoint | None:
        endpoints = self._endpoints
        count = len(endpoints)
        if not count:
            return None
        index = self._next
        self._next = (index + 1) % count
        chosen = endpoints[index]
        if inv.tried and chosen.address in inv.tried:
            for step in range(1, count):
                candidate = endpoints[(index + step) % count]
                if candidate.address not in inv.tried:
                    return candidate
        return chosen
