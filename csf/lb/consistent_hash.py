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
from bisect import bisect_left, bisect_right
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
# Past this share of changed nodes a ring is built afresh rather than edited.
_REBUILD_SHARE = 0.25

_hasher = HashRing(nodes=[])


@functools.lru_cache(maxsize=16_384)
def _node_points(address: str) -> tuple[int, ...]:
    """The ring points of one node: uhashring's ketama points, which depend on it alone."""
    return tuple(point for point, _ in HashRing(nodes=[address], vnodes=VIRTUAL_NODES).get_points())


class Ring:
    """A sorted ring of (point, owner), derived from the last one built where it can be.

    Building 1,000 nodes afresh takes over 100 ms; adding or removing one node to the
    last ring takes a few, which keeps membership changes from stalling the event loop.
    """

    __slots__ = ("addresses", "owners", "points")
    last: Ring | None = None

    def __init__(self, addresses: frozenset[str], points: list[int], owners: list[str]) -> None:
        self.addresses = addresses
        self.points = points
        self.owners = owners

    @classmethod
    def of(cls, addresses: frozenset[str]) -> Ring:
        previous = cls.last
        if previous is not None and previous.addresses == addresses:
            return previous
        changed = len(addresses ^ previous.addresses) if previous is not None else len(addresses)
        if previous is None or changed > _REBUILD_SHARE * max(len(addresses), 1):
            pairs = sorted((point, a) for a in addresses for point in _node_points(a))
            ring = cls(addresses, [p for p, _ in pairs], [a for _, a in pairs])
        else:
            ring = previous._edited(addresses)
        cls.last = ring
        return ring

    def _edited(self, addresses: frozenset[str]) -> Ring:
        removed = self.addresses - addresses
        kept = [i for i, owner in enumerate(self.owners) if owner not in removed]
        points = [self.points[i] for i in kept]
        owners = [self.owners[i] for i in kept]
        for address in addresses - self.addresses:
            for point in _node_points(address):
                index = bisect_left(points, point)
                points.insert(index, point)
                owners.insert(index, address)
        return Ring(addresses, points, owners)

    def walk(self, key: str) -> Iterator[str]:
        """Every owner once, in ring order from the key's position."""
        points, owners = self.points, self.owners
        start = bisect_right(points, _hasher.hashi(key))
        seen: set[str] = set()
        for index in range(start, start + len(points)):
            owner = owners[index % len(points)]
            if owner not in seen:
                seen.add(owner)
                yield owner
                if len(seen) == len(self.addresses):
                    return

    def owner(self, key: str) -> str:
        return self.owners[bisect_right(self.points, _hasher.hashi(key)) % len(self.points)]


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
        self._ring = Ring.of(frozenset(self._by_address)) if self.endpoints else None

    def _walk(self, key: str) -> Iterator[Endpoint]:
        """The endpoints in ring order, starting at the key's own."""
        assert self._ring is not None
        for address in self._ring.walk(key):
            yield self._by_address[address]

    def choose(self, inv: Invocation) -> Endpoint:
        key = hash_key(inv)
        if key is None:
            return self.endpoints[int(random.random() * len(self.endpoints))]
        assert self._ring is not None
        return self._by_address[self._ring.owner(key)]

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
        return next(self._walk(key))
