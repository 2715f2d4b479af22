"""What a consumer's balancer honours beyond the provider list: warm-up weights and
outlier ejection, observed on the attempts a real consumer sends."""

from collections import Counter
from pathlib import Path
from typing import Any

import grpc

import csf
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from demo.providers import Greeter
from tests.conftest import (
    consumer_for,
    consumer_with_filter,
    greeter_variant,
    serving,
    wait_until,
)

Request = greeter_pb2.HelloRequest


async def test_a_provider_in_its_warm_up_gets_a_small_share(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    # Seconds into a 600 s warm-up, the new provider's weight of 100 counts as 1.
    warming, warm = greeter_variant(warmup=600), greeter_variant(warmup=0)
    async with (
        serving(zookeeper.url, tenant, warming, warm) as (new, old),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        stub = consumer.stub(
            greeter_pb2_grpc.GreeterStub, service="XIESR", lb="weighted_round_robin"
        )
        directory = consumer.directory("XIESR")
        await wait_until(lambda: len(directory.endpoints) == 2, 10, "both providers")
        served_by = Counter(
            [(await stub.SayHello(Request(name=str(i)))).served_by for i in range(101)]
        )
        assert served_by[new.address] <= 5, served_by
        assert served_by[old.address] >= 96, served_by


class Probe:
    """After load_balance: each attempt's provider, and whether `watched` was ejected."""

    def __init__(self) -> None:
        self.watched: Any = None
        self.while_ejected: Counter[str] = Counter()
        self.attempts: Counter[str] = Counter()

    async def __call__(self, inv: csf.Invocation, next: csf.Invoker, /) -> Any:
        assert inv.endpoint is not None
        self.attempts[inv.endpoint.address] += 1
        if self.watched is not None and self.watched.outlier.ejected():
            self.while_ejected[inv.endpoint.address] += 1
        return await next(inv)


async def test_an_ejected_provider_gets_no_attempt_while_it_is_ejected(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    probe = Probe()
    consumer = consumer_with_filter(
        zookeeper.url, tenant, tmp_path, after="load_balance", filter_=probe
    )

    async def unavailable(self: Greeter, request: Any, context: Any) -> Any:
        await context.abort(grpc.StatusCode.UNAVAILABLE, "failing on purpose")

    failing = greeter_variant()
    failing.SayHello = unavailable  # type: ignore[method-assign]
    async with serving(zookeeper.url, tenant, failing, greeter_variant()) as (bad, good), consumer:
        stub = consumer.stub(
            greeter_pb2_grpc.GreeterStub,
            service="XIESR",
            methods={"SayHello": csf.MethodConfig(idempotent=True)},
        )
        endpoints = consumer.directory("XIESR").endpoints
        await wait_until(lambda: len(endpoints) == 2, 10, "both providers")
        probe.watched = endpoints[bad.address]
        replies = [await stub.SayHello(Request(name=str(i))) for i in range(200)]
        assert {reply.served_by for reply in replies} == {good.address}, "failover served all"
        assert probe.attempts[bad.address] >= 5, "the failing provider was tried until ejected"
        assert probe.while_ejected[good.address] > 0, "calls were made while it was ejected"
        assert probe.while_ejected[bad.address] == 0, probe.while_ejected
