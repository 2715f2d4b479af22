"""The load_balance filter: the endpoint for each attempt, counted busy while it runs."""

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
import pytest

import csf
from csf import Invocation, compose
from csf.directory import PickerRef
from csf.lb import LoadBalanceFilter
from csf.lb.round_robin import RoundRobinPicker
from tests.lb.fakes import invocation


class Endpoint:
    """Records what the filter tells an endpoint."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.usable = True
        self.weight = 100
        self.active = 0
        self.begun: list[tuple[float, bool]] = []
        self.ended: list[grpc.StatusCode] = []

    def begin(self, deadline: float, *, timed: bool = True) -> Callable[[grpc.StatusCode], None]:
        self.active += 1
        self.begun.append((deadline, timed))

        def done(code: grpc.StatusCode) -> None:
            self.active -= 1
            self.ended.append(code)

        return done


class Directory:
    """Answers picks the ref's own picker could not make."""

    def __init__(self, endpoint: Endpoint | None) -> None:
        self.endpoint = endpoint
        self.asked: list[tuple[PickerRef, Invocation]] = []

    async def pick(self, ref: PickerRef, inv: Invocation) -> Any:
        self.asked.append((ref, inv))
        if self.endpoint is None:
            raise csf.NoProviderError("no provider")
        return self.endpoint


def _ref(*endpoints: Endpoint) -> PickerRef:
    ref = PickerRef()
    ref.picker = RoundRobinPicker(endpoints)  # type: ignore[arg-type]
    return ref


async def test_the_picked_endpoint_is_busy_during_the_attempt_and_noted_as_tried() -> None:
    endpoint = Endpoint("10.0.0.1:1")
    seen: list[tuple[Any, int]] = []

    async def attempt(inv: Invocation) -> str:
        seen.append((inv.endpoint, endpoint.active))
        return "ok"

    inv = invocation()
    lb = LoadBalanceFilter(Directory(None), _ref(endpoint))  # type: ignore[arg-type]
    assert await compose([lb], attempt)(inv) == "ok"
    assert seen == [(endpoint, 1)]
    assert inv.endpoint is endpoint and inv.tried == {"10.0.0.1:1"}
    assert endpoint.active == 0 and endpoint.ended == [grpc.StatusCode.OK]
    assert endpoint.begun == [(inv.deadline, True)], "a unary attempt is timed"


async def test_a_stream_keeps_its_endpoint_busy_until_it_ends() -> None:
    endpoint = Endpoint("10.0.0.1:1")
    inv = Invocation("S", "/p.S/M", None, None, 1e9, streaming=True)
    lb = LoadBalanceFilter(Directory(None), _ref(endpoint))  # type: ignore[arg-type]
    assert await compose([lb], _answer)(inv) == "ok"
    assert endpoint.active == 1 and endpoint.ended == [], "open: still busy"
    assert endpoint.begun == [(1e9, False)], "how long a stream stays open is no latency"
    inv.ended(grpc.StatusCode.INTERNAL)
    assert endpoint.active == 0 and endpoint.ended == [grpc.StatusCode.INTERNAL]


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (
            grpc.aio.AioRpcError(
                grpc.StatusCode.NOT_FOUND, grpc.aio.Metadata(), grpc.aio.Metadata(), "", None
            ),
            grpc.StatusCode.NOT_FOUND,
        ),
        (ValueError("bug"), grpc.StatusCode.UNKNOWN),
    ],
    ids=["status", "bug"],
)
async def test_the_attempt_ends_with_the_code_it_failed_with(
    error: BaseException, code: grpc.StatusCode
) -> None:
    endpoint = Endpoint("10.0.0.1:1")

    async def attempt(inv: Invocation) -> str:
        raise error

    lb = LoadBalanceFilter(Directory(None), _ref(endpoint))  # type: ignore[arg-type]
    with pytest.raises(type(error)):
        await compose([lb], attempt)(invocation())
    assert endpoint.active == 0 and endpoint.ended == [code]


async def test_a_call_cancelled_under_it_is_unavailable_and_one_its_caller_cancels_stays_so() -> (
    None
):
    endpoint = Endpoint("10.0.0.1:1")
    entered = asyncio.Event()

    async def channel_closed(inv: Invocation) -> str:
        raise asyncio.CancelledError  # what a grpc.aio call raises when its channel closes

    async def held(inv: Invocation) -> str:
        entered.set()
        await asyncio.Event().wait()
        return "never"

    lb = LoadBalanceFilter(Directory(None), _ref(endpoint))  # type: ignore[arg-type]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await compose([lb], channel_closed)(invocation())
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert "10.0.0.1:1 was closed during the call" in (caught.value.details() or "")

    task = asyncio.ensure_future(compose([lb], held)(invocation()))
    await asyncio.wait_for(entered.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Closed under the call: a provider gone away; cancelled by its caller: no verdict.
    assert endpoint.ended == [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED]
    assert endpoint.active == 0


async def test_an_attempt_past_its_deadline_is_not_sent_nor_counted_on_the_provider() -> None:
    endpoint = Endpoint("10.0.0.1:1")
    inv = invocation()
    inv.attempt_deadline = 1.0  # long past on the monotonic clock
    lb = LoadBalanceFilter(Directory(None), _ref(endpoint))  # type: ignore[arg-type]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await compose([lb], _answer)(inv)
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert endpoint.begun == [] and endpoint.ended == []


async def test_the_routers_pool_is_used_before_the_default_one() -> None:
    default, routed = Endpoint("10.0.0.1:1"), Endpoint("10.0.0.2:1")
    inv = invocation()
    inv.pool = _ref(routed)
    lb = LoadBalanceFilter(Directory(None), _ref(default))  # type: ignore[arg-type]
    assert await compose([lb], _answer)(inv) == "ok"
    assert inv.endpoint is routed


async def _answer(inv: Invocation) -> str:
    return "ok"


async def test_the_directory_picks_when_the_picker_is_not_built_or_has_nobody() -> None:
    listed = Endpoint("10.0.0.3:1")
    directory = Directory(listed)
    unbuilt, empty = PickerRef(), _ref()
    calls = [invocation(), invocation()]
    for ref, inv in zip((unbuilt, empty), calls, strict=True):
        lb = LoadBalanceFilter(directory, ref)  # type: ignore[arg-type]
        assert await compose([lb], _answer)(inv) == "ok"
        assert inv.endpoint is listed
    assert directory.asked == [(unbuilt, calls[0]), (empty, calls[1])]
    refusing = LoadBalanceFilter(Directory(None), unbuilt)  # type: ignore[arg-type]
    with pytest.raises(csf.NoProviderError):
        await compose([refusing], _answer)(invocation())
