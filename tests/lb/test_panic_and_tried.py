"""Every balancer skips tried and unusable endpoints, and picks anyway when all are."""

from typing import Any

import pytest

from csf.lb import BALANCERS
from tests.lb.fakes import endpoints, invocation, shares

ALL = sorted(BALANCERS)


@pytest.mark.parametrize("name", ALL)
def test_unusable_endpoints_are_skipped(name: str) -> None:
    pool: list[Any] = endpoints(4)
    pool[0].usable = pool[1].usable = False
    counts = shares(BALANCERS[name](pool), 2_000, key="k")
    assert set(counts) <= {pool[2].address, pool[3].address}


@pytest.mark.parametrize("name", ALL)
def test_when_every_endpoint_is_unusable_it_panics_and_picks_among_all(name: str) -> None:
    pool: list[Any] = endpoints(3, usable=False)
    picker = BALANCERS[name](pool)
    assert all(picker.pick(invocation(key=str(i))) in pool for i in range(100))


@pytest.mark.parametrize("name", ALL)
def test_tried_endpoints_are_skipped_while_others_remain(name: str) -> None:
    pool: list[Any] = endpoints(3)
    picker = BALANCERS[name](pool)
    tried = {pool[0].address, pool[1].address}
    for index in range(50):
        assert picker.pick(invocation(tried, key=str(index))) is pool[2]
    every = {endpoint.address for endpoint in pool}
    assert picker.pick(invocation(every)) in pool


@pytest.mark.parametrize("name", ALL)
def test_no_endpoints_picks_none(name: str) -> None:
    assert BALANCERS[name]([]).pick(invocation()) is None
