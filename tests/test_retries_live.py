"""Retries on real providers: a slow but healthy method is not cut short by its own
retries, and retries wait their back-off."""

import itertools
import time
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
from kazoo.client import KazooClient

import csf
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from demo.providers import Greeter
from tests.conftest import consumer_for, counted, serving

Request = greeter_pb2.HelloRequest


async def test_a_slow_but_healthy_method_succeeds_with_retries_on(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path, figures: list[str]
) -> None:
    calls: Counter[str] = Counter()
    async with (
        serving(zookeeper.url, tenant, counted(calls, "slow")),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        stub = consumer.stub(
            greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=1.5, retries=2,
            methods={"SayHello": csf.MethodConfig(idempotent=True)},
        )  # fmt: skip
        await consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR").SayHello(Request())
        seen = []
        for _ in range(2):
            calls.clear()
            started = time.monotonic()
            reply = await stub.SayHello(Request(name="x", delay_ms=700))
            assert reply.message == "hi x", "700 ms is within the 1.5 s deadline"
            seen.append((time.monotonic() - started, calls["slow"]))
        # The first call knew no latency: its first attempt had a third of the deadline,
        # the retry twice that. The second call's attempt gets 4 x the latency seen.
        (first, first_attempts), (second, second_attempts) = seen
        assert first < 1.5 and first_attempts == 2, seen
        assert second < 1.5 and second_attempts == 1, seen
        figures.append(
            f"700 ms method, 1.5 s deadline, retries=2: first call {first:.2f} s in "
            f"{first_attempts} attempts, second {second:.2f} s in {second_attempts}"
        )


async def test_retries_wait_their_back_off(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path
) -> None:
    arrivals: list[float] = []

    async def say_hello(self: Greeter, request: Any, context: Any) -> Any:
        arrivals.append(time.monotonic())
        if len(arrivals) <= 2:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "failing on purpose")
        return await Greeter.SayHello(self, request, context)

    servicer = csf.provider(service="XIESR", warmup=0)(
        type("TwiceFailing", (Greeter,), {"SayHello": say_hello})
    )
    async with (
        serving(zookeeper.url, tenant, servicer),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        stub = consumer.stub(
            greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5, retries=2,
            methods={"SayHello": csf.MethodConfig(idempotent=True)},
        )  # fmt: skip
        assert (await stub.SayHello(Request(name="x"))).message == "hi x"
    first, second = (later - earlier for earlier, later in itertools.pairwise(arrivals))
    # Back-off: 10 ms x 2^n plus up to 10 ms of jitter, at most 100 ms.
    assert 0.010 <= first < 0.5 and 0.020 <= second < 0.5, (first, second)
