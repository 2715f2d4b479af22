"""Every balancer on real providers: calls succeed, and each behaves as it should."""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

import csf
from csf.lb import BALANCERS
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from tests.conftest import consumer_for, greeter_variant, serving

FAST = greeter_variant()
SLOW = greeter_variant(delay=0.05)


@asynccontextmanager
async def setup(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path, *servicers: Any
) -> AsyncIterator[tuple[list[csf.Server], csf.Consumer]]:
    async with (
        serving(zookeeper.url, tenant, *servicers) as servers,
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        yield servers, consumer


@pytest.mark.parametrize("lb", sorted(BALANCERS))
async def test_each_balancer_serves_every_call_across_all_providers(
    lb: str, zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    async with setup(zookeeper, tenant, tmp_path, FAST, FAST, FAST) as (servers, consumer):
        stub = consumer.stub(
            greeter_pb2_grpc.GreeterStub, service="XIESR", lb=lb, hash_key=lambda r: r.name
        )
        replies = await asyncio.gather(
            *(stub.SayHello(greeter_pb2.HelloRequest(name=f"user-{i}")) for i in range(300))
        )
        assert {reply.served_by for reply in replies} == {server.address for server in servers}


async def test_consistent_hash_keeps_a_key_on_one_provider_across_consumers(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    async with (
        setup(zookeeper, tenant, tmp_path, FAST, FAST, FAST) as (_, consumer),
        consumer_for(zookeeper.url, tenant, tmp_path / "other", app="other") as other,
    ):
        by_function = consumer.stub(
            greeter_pb2_grpc.GreeterStub, service="XIESR", lb="consistent_hash",
            hash_key=lambda request: request.name,
        )  # fmt: skip
        by_metadata = consumer.stub(
            greeter_pb2_grpc.GreeterStub, service="XIESR", lb="consistent_hash"
        )
        for user in ("ann", "bob", "cid", "dan"):
            request = greeter_pb2.HelloRequest(name=user)
            keyed = {(await by_function.SayHello(request)).served_by for _ in range(20)}
            metadata = (("x-csf-hash-key", user),)
            tagged = {(await by_metadata.SayHello(request, metadata=metadata)).served_by
                      for _ in range(20)}  # fmt: skip
            assert len(keyed) == 1 and keyed == tagged
            elsewhere = other.stub(
                greeter_pb2_grpc.GreeterStub, service="XIESR", lb="consistent_hash",
                hash_key=lambda request: request.name,
            )  # fmt: skip
            assert {(await elsewhere.SayHello(request)).served_by} == keyed


@pytest.mark.parametrize("lb", ["least_active", "p2c_ewma"])
async def test_latency_aware_balancers_send_less_to_a_slow_provider(
    lb: str, zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path, figures: list[str]
) -> None:
    async with setup(zookeeper, tenant, tmp_path, SLOW, FAST, FAST) as (servers, consumer):
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", lb=lb)
        counts: Counter[str] = Counter()

        async def worker() -> None:
            for _ in range(40):
                counts[(await stub.SayHello(greeter_pb2.HelloRequest(name="x"))).served_by] += 1

        await asyncio.gather(*(worker() for _ in range(8)))
        slow_share = counts[servers[0].address] / sum(counts.values())
        figures.append(f"{lb}: a provider 50 ms slower got {slow_share:.1%} of 320 calls")
        assert slow_share < 0.2, counts  # an even split would give it a third
