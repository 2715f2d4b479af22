"""consistent_hash: the same key goes to the same provider, on every consumer.

The ring (uhashring) is keyed on host:port and weight alone, so consumers that see the
same providers build the same ring. The heaviest provider has 160 virtual nodes, the
others in proportion to their weight (at least 1), so each owns a share of the keys
that follows its weight. The key is the stub's `hash_key(request)` or else the
`x-csf-hash-key` metadata; a call without a key goes to a random point of the ring.
`consistent_hash_bounded` (consistent hashing with bounded loads) walks on along the ring
past providers already carrying more than 1.25 times their weight's share of the calls
in flight, so one hot key cannot swamp one provider.
"""

from __future__ import annotations

import functools
import math
import random
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Mapping, Sequence

from uhashring import HashRing

from csf._invocation import Invocation
from csf.endpoint import Endpoint
from csf.lb._picker import LoadWatchingPicker, SnapshotPicker

name = "consistent_hash"
bounded_name = "consistent_hash_bounded"
HASH_KEY_METADATA = "x-csf-hash-key"
VIRTUAL_NODES = 160
LOAD_BOUND = 1.25
# Past this share of changed nodes a ring is built afresh rather than edited.
_REBUILD_SHARE = 0.25
_HASH_BITS = 128  # uhashring's default hash is the whole md5

_hasher = HashRing(nodes=[])

Nodes = frozenset[tuple[str, int]]
"""The ring's nodes: (host:port, number of virtual nodes)."""


def virtual_nodes(weights: Mapping[str, int]) -> Nodes:
    """Each address with its virtual nodes: 160 for the heaviest, the others in proportion."""
    heaviest = max(weights.values(), default=1)
    return frozenset(
        (address, max(1, round(VIRTUAL_NODES * weight / heaviest)))
        for address, weight in weights.items()
    )


@functools.lru_cache(maxsize=16_384)
def _node_points(address: str, vnodes: int) -> tuple[int, ...]:
    """The ring points of one node: uhashring's, which depend on it and its vnodes alone."""
    ring = HashRing(nodes={address: {"vnodes": vnodes}})
    return tuple(point for point, _ in ring.get_points())


class Ring:
    """A sorted ring of (point, owner), derived from the last one built where it can be.

    Building 1,000 nodes afresh takes over 100 ms; adding or removing one node to the
    last ring takes a few, which keeps membership changes from stalling the event loop.
    """

    __slots__ = ("nodes", "owners", "points")
    last: Ring | None = None

    def __init__(self, nodes: Nodes, points: list[int], owners: list[str]) -> None:
        self.nodes = nodes
        self.points = points
        self.owners = owners

    @classmethod
    def of(cls, weights: Mapping[str, int]) -> Ring:
        """The ring of these addresses and weights (each at least 1)."""
        nodes = virtual_nodes(weights)
        previous = cls.last
        if previous is not None and previous.nodes == nodes:
            return previous
        changed = len(nodes ^ previous.nodes) if previous is not None else len(nodes)
        if previous is None or changed > _REBUILD_SHARE * max(len(nodes), 1):
            pairs = sorted((point, a) for a, vnodes in nodes for point in _node_points(a, vnodes))
            ring = cls(nodes, [p for p, _ in pairs], [a for _, a in pairs])
        else:
            ring = previous._edited(nodes)
        cls.last = ring
        return ring

    def _edited(self, nodes: Nodes) -> Ring:
        removed = {address for address, _ in self.nodes - nodes}  # gone, or reweighted
        kept = [i for i, owner in enumerate(self.owners) if owner not in removed]
        points = [self.points[i] for i in kept]
        owners = [self.owners[i] for i in kept]
        for address, vnodes in nodes - self.nodes:
            for point in _node_points(address, vnodes):
                index = bisect_left(points, point)
                points.insert(index, point)
                owners.insert(index, address)
        return Ring(nodes, points, owners)

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
                if len(seen) == len(self.nodes):
                    return

    def owner(self, key: str | None) -> str:
        """The owner of the key's point; of a random point (by weight) without a key."""
        point = _hasher.hashi(key) if key is not None else random.getrandbits(_HASH_BITS)
        return self.owners[bisect_right(self.points, point) % len(self.points)]


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
        weights = {
            e.address: weight for e, weight in zip(self.endpoints, self.weights, strict=True)
        }
        self._ring = Ring.of(weights) if self.endpoints else None

    def _walk(self, key: str) -> Iterator[Endpoint]:
        """The endpoints in ring order, starting at the key's own."""
        assert self._ring is not None
        for address in self._ring.walk(key):
            yield self._by_address[address]

    def choose(self, inv: Invocation) -> Endpoint:
        assert self._ring is not None
        return self._by_address[self._ring.owner(hash_key(inv))]

    def choose_among(self, candidates: Sequence[Endpoint], inv: Invocation) -> Endpoint:
        key = hash_key(inv)
        if key is None:
            return super().choose_among(candidates, inv)
        allowed = set(candidates)
        return next(endpoint for endpoint in self._walk(key) if endpoint in allowed)


class BoundedConsistentHashPicker(LoadWatchingPicker, ConsistentHashPicker):
    __slots__ = ("_in_flight", "_total_weight", "_weight")

    def __init__(self, endpoints: Sequence[Endpoint]) -> None:
        super().__init__(endpoints)
        self._weight = dict(zip(self.endpoints, self.weights, strict=True))
        self._total_weight = sum(self.weights)
        self._in_flight = sum(endpoint.active for endpoint in self.endpoints)
        self.watch()

    def _moved(self, endpoint: Endpoint, change: int) -> None:
        self._in_flight += change

    def choose(self, inv: Invocation) -> Endpoint:
        key = hash_key(inv)
        if key is None:
            return super().choose(inv)
        # Each endpoint's bound is its weight's share of the calls in flight, plus 25%.
        allowed = LOAD_BOUND * (self._in_flight + 1)
        for endpoint in self._walk(key):
            if endpoint.active < math.ceil(allowed * self._weight[endpoint] / self._total_weight):
                return endpoint
        return next(self._walk(key))
