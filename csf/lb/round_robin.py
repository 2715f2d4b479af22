"""round_robin: each endpoint in turn."""

from __future__ import annotations

import random
from collections.abc import Sequence

from csf._invocation import Invocation
from csf.endpoint import Endpoint
from csf.lb._picker import SnapshotPicker

name = "round_robin"


class RoundRobinPicker(SnapshotPicker):
    __slots__ = ("_next",)

    def __init__(self, endpoints: Sequence[Endpoint]) -> None:
        super().__init__(endpoints)
        # A random start keeps many consumers from all opening on the same provider.
        self._next = random.randrange(len(self.endpoints)) if self.endpoints else 0

    def choose(self, inv: Invocation) -> Endpoint:
        index = self._next
        self._next = (index + 1) % len(self.endpoints)
        return self.endpoints[index]
