"""A stand-in for csf.endpoint.Endpoint in balancer unit tests: no channel, same fields."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from csf import Invocation
from csf.registry import Instance


@dataclass(eq=False)
class FakeEndpoint:
    address: str
    weight: int = 100
    active: int = 0
    ewma: float = 0.0
    usable: bool = True
    watchers: list[Callable[[Any, int], None]] = field(default_factory=list)

    @property
    def instance(self) -> Instance:
        host, port = self.address.rsplit(":", 1)
        return Instance(host=host, port=int(port), weight=self.weight)

    def begin(self) -> None:
        self.active += 1
        for watcher in self.watchers:
            watcher(self, 1)

    def end(self) -> None:
        self.active -= 1
        for watcher in self.watchers:
            watcher(self, -1)


def endpoints(count: int, **fields: Any) -> list[Any]:
    return [FakeEndpoint(f"10.0.0.{index}:50051", **fields) for index in range(count)]


def invocation(tried: set[str] | None = None, key: str | None = None) -> Invocation:
    return Invocation("S", "/p.S/M", None, None, 1e9, tried=tried or set(), hash_key=key)


def shares(picker: Any, picks: int = 10_000, **inv: Any) -> Counter[str]:
    """How many of `picks` picks went to each address."""
    return Counter(picker.pick(invocation(**inv)).address for _ in range(picks))


def within(count: int, expected: float, tolerance: float) -> bool:
    return abs(count - expected) <= tolerance * expected


def ordered(items: Sequence[Any]) -> list[str]:
    return [item.address for item in items]
