"""least_active: the endpoint with the fewest calls in flight; ties by weighted random.

Endpoints are kept in buckets by in-flight count, moved as calls begin and end (the
endpoints tell the picker until it is closed), so a pick reads the lowest bucket instead
of scanning all. Within it, weighted random by rejection sampling is O(1) expected.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence

from csf._invocation import Invocation
from csf.endpoint import Endpoint
from csf.lb._picker import LoadWatchingPicker, weighted_choice

name = "least_active"
_SAMPLES = 8


class LeastActivePicker(LoadWatchingPicker):
    __slots__ = ("_buckets", "_least", "_max_weight", "_position", "_slot")

    def __init__(self, endpoints: Sequence[Endpoint]) -> None:
        super().__init__(endpoints)
        self._slot = {endpoint: slot for slot, endpoint in enumerate(self.endpoints)}
        self._max_weight = max((e.weight for e in self.endpoints), default=0)
        self._buckets: defaultdict[int, list[int]] = defaultdict(list)
        self._position = [0] * len(self.endpoints)
        for slot, endpoint in enumerate(self.endpoints):
            self._place(slot, endpoint.active)
        self._least = min((e.active for e in self.endpoints), default=0)
        self.watch()

    def _place(self, slot: int, active: int) -> None:
        bucket = self._buckets[active]
        self._position[slot] = len(bucket)
        bucket.append(slot)

    def _moved(self, endpoint: Endpoint, change: int) -> None:
        slot = self._slot[endpoint]
        old = endpoint.active - change
        bucket = self._buckets[old]
        # Swap-remove the slot from its old bucket.
        last = bucket.pop()
        if last != slot:
            index = self._position[slot]
            bucket[index] = last
            self._position[last] = index
        self._place(slot, endpoint.active)
        if endpoint.active < self._least or (old == self._least and not bucket):
            self._least = endpoint.active

    def choose(self, inv: Invocation) -> Endpoint:
        bucket = self._buckets[self._least]
        endpoints, max_weight = self.endpoints, self._max_weight
        for _ in range(_SAMPLES):
            candidate = endpoints[bucket[int(random.random() * len(bucket))]]
            if max_weight <= 0 or random.random() * max_weight < candidate.weight:
                return candidate
        return weighted_choice([endpoints[slot] for slot in bucket])

    def choose_among(self, candidates: Sequence[Endpoint], inv: Invocation) -> Endpoint:
        least = min(candidate.active for candidate in candidates)
        return weighted_choice([c for c in candidates if c.active == least])
