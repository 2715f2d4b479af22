"""Every call has a deadline: the stub's (5 s unless set), the `timeout` rule's, the
call's own, and never later than the deadline of the handler the call is made in.

A provider sees a deadline up to ~0.1 s longer than the one sent (gRPC rounds it up
on the wire), hence the small slack in the bounds below."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
from kazoo.client import KazooClient

import csf
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from demo.providers import Greeter
from tests.conftest import consumer_for, pushed, removed, serving, wait_until

Request = greeter_pb2.HelloRequest


class DeadlineRecorder(Greeter):
    """Records the deadline each call arrived with (seconds left as its handler starts)."""

    seen: list[float | None]

    async def SayHello(self, request: Any, context: Any) -> Any:
        self.seen.append(context.time_remaining())
        return await super().SayHello(request, context)

    async def StreamHellos(self, request: Any, context: Any) -> AsyncIterator[Any]:
        self.seen.append(context.time_remaining())
        async for reply in super().StreamHellos(request, context):
            yield reply


def recorder(service: str = "XIESR") -> type[DeadlineRecorder]:
    cls = type(f"Recorder{service}", (DeadlineRecorder,), {"seen": []})
    return csf.provider(service=service, warmup=0)(cls)


async def test_a_stub_without_a_timeout_gives_each_call_five_seconds(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    servicer = recorder()
    async with (
        serving(zookeeper.url, tenant, servicer),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR")
        await stub.SayHello(Request(name="x"))
        [left] = servicer.seen
        assert left is not None and 1.0 < left <= 5.1, left


async def test_a_handler_s_deadline_bounds_the_calls_it_makes(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    """A calls B with a 30 s stub timeout while A's own caller gave A 2 s: B gets 2 s."""
    consumer = consumer_for(zookeeper.url, tenant, tmp_path)
    downstream = recorder("HOPB")

    async def say_hello(self: Greeter, request: Any, context: Any) -> Any:
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="HOPB", timeout=30)
        return await stub.SayHello(request)

    upstream = csf.provider(service="HOPA", warmup=0)(
        type("HopA", (Greeter,), {"SayHello": say_hello})
    )
    async with consumer, serving(zookeeper.url, tenant, upstream, downstream):
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="HOPA", timeout=30)
        await stub.SayHello(Request(name="warm"))  # listings and connections made
        await stub.SayHello(Request(name="x"), timeout=2.0)
        [_, left] = downstream.seen
        assert left is not None and left <= 2.1, f"B was given {left} s, more than A had"


async def test_the_timeout_rule_sets_the_deadline_and_a_call_s_own_timeout_wins(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path
) -> None:
    servicer = recorder()
    async with (
        serving(zookeeper.url, tenant, servicer),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=30)
        await stub.SayHello(Request(name="warm"))  # the listing and connection made
        servicer.seen.clear()
        rules = consumer.rules("XIESR")
        rule = {"schema": 1, "timeout_ms": 20_000, "methods": {"SayHello": {"timeout_ms": 700}}}
        await pushed(kazoo, tenant, rules, "timeout", rule)

        await stub.SayHello(Request(name="rule"))
        async for _ in stub.StreamHellos(Request(name="rule", count=1)):
            pass
        await stub.SayHello(Request(name="own"), timeout=3.0)
        unary, stream, own = servicer.seen
        assert unary is not None and unary <= 0.8, f"the method's rule gave {unary} s"
        assert stream is not None and 0.8 < stream <= 21.0, f"the service's rule gave {stream} s"
        assert own is not None and 0.8 < own <= 3.1, f"the call's own timeout gave {own} s"

        await removed(kazoo, tenant, rules, "timeout")
        await stub.SayHello(Request(name="stub"))
        assert servicer.seen[-1] is not None and servicer.seen[-1] > 20.0, "the stub's 30 s"


async def test_the_inherited_deadline_ends_the_downstream_call_not_its_cancellation(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    """A's handler makes its call to B in a task of its own, shielded from A's
    cancellation: only the deadline A inherited can end that call at A's 1 s."""
    consumer = consumer_for(zookeeper.url, tenant, tmp_path)
    ended: list[tuple[float, grpc.StatusCode]] = []

    async def stall(self: Greeter, request: Any, context: Any) -> Any:
        await asyncio.sleep(30)  # B never answers in time
        return greeter_pb2.HelloReply(message="too late")

    async def forward(self: Greeter, request: Any, context: Any) -> Any:
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="HOPB", timeout=20)
        started = time.monotonic()

        async def call_b() -> None:
            try:
                await stub.SayHello(request)
            except grpc.aio.AioRpcError as error:
                ended.append((time.monotonic() - started, error.code()))

        await asyncio.shield(asyncio.ensure_future(call_b()))
        return greeter_pb2.HelloReply(message="unreachable")

    upstream = csf.provider(service="HOPA", warmup=0)(
        type("HopA", (Greeter,), {"SayHello": forward})
    )
    downstream = csf.provider(service="HOPB", warmup=0)(
        type("HopB", (Greeter,), {"SayHello": stall})
    )
    async with consumer, serving(zookeeper.url, tenant, upstream, downstream):
        warm = consumer.stub(greeter_pb2_grpc.GreeterStub, service="HOPB", timeout=5)
        with contextlib.suppress(grpc.aio.AioRpcError):
            await warm.SayHello(Request(name="warm"), timeout=0.5)  # listing and connection
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="HOPA", timeout=20)
        with contextlib.suppress(grpc.aio.AioRpcError):
            await stub.SayHello(Request(name="x"), timeout=1.0)
        await wait_until(lambda: bool(ended), 10, "the call to B over")
    [(seconds, code)] = ended
    assert code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert seconds < 1.5, f"B's call ran {seconds:.2f} s: the inherited 1 s did not end it"
