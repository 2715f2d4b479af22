from csf.lb.round_robin import RoundRobinPicker
from tests.lb.fakes import endpoints, invocation, shares


def test_each_endpoint_in_turn() -> None:
    picker = RoundRobinPicker(endpoints(4))
    assert set(shares(picker).values()) == {2_500}
    first_four = {picker.pick(invocation()).address for _ in range(4)}  # type: ignore[union-attr]
    assert len(first_four) == 4


def test_no_endpoints_picks_none() -> None:
    assert RoundRobinPicker([]).pick(invocation()) is None
