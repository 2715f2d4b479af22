"""consistent_hash: the same key goes to the same provider, on every consumer.

The ring (uhashring, 160 virtual nodes each) is keyed on host:port alone, so consumers
that see the same providers build the same ring. The key is the stub's `hash_key(request)`
or else the `x-csf-hash-key` metadata; a call without a key goes to a random provider.
`consistent_hash_bounded` (consistent hashing with bounded loads) walks on along the ring
past providers already carrying more than 1.25 times the mean number of calls in flight,
so one hot key cannot swamp one provider.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Iterator, Sequence

from uhashring import HashRing

from csf._invocation import Invocation
from csf.endpoint import Endpoint
from csf.lb._picker import SnapshotPicker

name = "consistent_hash"
bounded_name = "consistent_hash_bounded"
HASH_KEY_METADATA = "x-csf-hash-key"
VIRTUAL_NODES = 160
LOAD_BOUND = 1.25


@functools.lru_cache(maxsize=64)
def _ring(addresses: tuple[str, ...]) -> HashRing:
    """Rings are costly (n x 160 hashes) and depend on the addresses only: share them."""
    return HashRing(nodes=list(addresses), vnodes=VIRTUAL_NODES)


def hash_key(inv: Invocation) -> str | None:
    if inv.hash_key is not None:
        return inv.hash_key
    for key, value in inv.metadata or ():
        if key == HASH_KEY_METADATA:
            return value if isinstance(value, str) else value.decode()
    return None


class ConsistentHashPicker(SnapshotPicker):
    __slots__ = ("_by_address", "_ring")

    def __init__(self, endpoints: Sequence[Endpoint]) -> None:
        super().__init__(endpoints)
        self._by_address = {endpoint.address: endpoint for endpoint in self.endpoints}
        self._ring = _ring(tuple(sorted(self._by_address)))

    def _walk(self, key: str) -> Iterator[Endpoint]:
        """The endpoints in ring order, starting at the key's own."""
        for node in self._ring.range(key):
            yield self._by_address[node["nodename"]]

    def choose(self, inv: Invocation) -> Endpoint:
        key = hash_key(inv)
        if key is None:
            return self.endpoints[int(random.random() * len(self.endpoints))]
        return self._by_address[self._ring.get_node(key)]

    def choose_among(self, candidates: Sequence[Endpoint], inv: Invocation) -> Endpoint:
        key = hash_key(inv)
        if key is None:
            return random.choice(candidates)
        allowed = set(candidates)
        return next(endpoint for endpoint in self._walk(key) if endpoint in allowed)


class BoundedConsistentHashPicker(ConsistentHashPicker):
    __slots__ = ("_in_flight",)

    def __init__(self, endpoints: Sequence[Endpoint]) -> None:
        super().__init__(endpoints)
        self._in_flight = sum(endpoint.active for endpoint in self.endpoints)
        for endpoint in self.endpoints:
            endpoint.watchers.append(self._moved)

    def _moved(self, endpoint: Endpoint, change: int) -> None:
        self._in_flight += change

    def choose(self, inv: Invocation) -> Endpoint:
        key = hash_key(inv)
        if key is None:
            return self.endpoints[int(random.random() * len(self.endpoints))]
        bound = math.ceil(LOAD_BOUND * (self._in_flight + 1) / len(self.endpoints))
        for endpoint in self._walk(key):
            if endpoint.active < bound:
                return endpoint
        return self._by_address[self._ring.get_node(key)]
