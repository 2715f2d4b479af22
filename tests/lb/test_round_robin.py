from collections import Counter
from dataclasses import dataclass
from typing import Any

from csf import Invocation
from csf.lb.round_robin import RoundRobinPicker


@dataclass
class FakeEndpoint:
    address: str


def _endpoints(count: int) -> list[Any]:
    return [FakeEndpoint(f"10.0.0.{index}:1") for index in range(count)]


def _invocation(tried: set[str] | None = None) -> Invocation:
    return Invocation("S", "/p.S/M", None, None, 0.0, tried=tried or set())


def test_each_endpoint_in_turn() -> None:
    picker = RoundRobinPicker(_endpoints(4))
    picks = [picker.pick(_invocation()) for _ in range(10_000)]
    counts = Counter(endpoint.address for endpoint in picks if endpoint is not None)
    assert set(counts.values()) == {2_500}
    first_four = [endpoint.address for endpoint in picks[:4] if endpoint is not None]
    assert len(set(first_four)) == 4


def test_tried_endpoints_are_skipped_while_others_remain() -> None:
    endpoints = _endpoints(3)
    picker = RoundRobinPicker(endpoints)
    tried = {endpoints[0].address, endpoints[1].address}
    for _ in range(6):
        chosen = picker.pick(_invocation(tried))
        assert chosen is endpoints[2]
    every = {endpoint.address for endpoint in endpoints}
    assert picker.pick(_invocation(every)) in endpoints


def test_no_endpoints_picks_none() -> None:
    assert RoundRobinPicker([]).pick(_invocation()) is None
