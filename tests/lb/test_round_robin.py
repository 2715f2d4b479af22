from csf.lb.round_robin import RoundRobinPicker
from tests.lb.fakes import endpoints, invocation, shares


def test_each_endpoint_in_turn() -> None:
    picker = RoundRobinPicker(endpoints(4))
    assert set(shares(picker).values()) == {2_500}
    first_four = {picker.pick(invocation()).address for _ in range(4)}  # type: ignore[union-attr]
    assert len(first_four) == 4


def test_consumers_start_at_different_endpoints() -> None:
    pool = endpoints(4)
    firsts = {RoundRobinPicker(pool).pick(invocation()) for _ in range(200)}
    assert len(firsts) == 4


def test_a_retry_that_tried_a_provider_now_gone_still_goes_round() -> None:
    picker = RoundRobinPicker(endpoints(3))
    assert set(shares(picker, 3_000, tried={"10.9.9.9:50051"}).values()) == {1_000}


def test_no_endpoints_picks_none() -> None:
    assert RoundRobinPicker([]).pick(invocation()) is None
