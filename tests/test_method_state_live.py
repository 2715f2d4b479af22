"""Governance state is per method and per Consumer, not per stub: every stub of a method
shares its token bucket, semaphore and breaker, and stubs leave no rule listener behind."""

import asyncio
import gc
import time
from pathlib import Path

import pytest
from kazoo.client import KazooClient

import csf
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from tests.conftest import consumer_for, greeter_variant, pushed, serving, wait_until
from tests.test_limits_live import held

Request = greeter_pb2.HelloRequest
STUBS = 4


async def test_stubs_of_a_method_share_its_token_bucket(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path
) -> None:
    async with (
        serving(zookeeper.url, tenant, greeter_variant()),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        stubs = [
            consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5)
            for _ in range(STUBS)
        ]
        await stubs[0].SayHello(Request(name="warm"))
        rule = {"schema": 1, "side": "consumer", "rate": 5, "burst": 1}
        await pushed(kazoo, tenant, consumer.rules("XIESR"), "ratelimit", rule)
        admitted = 0
        started = time.monotonic()

        async def keep_calling(stub: greeter_pb2_grpc.GreeterStub) -> None:
            nonlocal admitted
            for _ in range(200):  # bounded in count and in time
                if time.monotonic() - started > 1.0:
                    return
                try:
                    await stub.SayHello(Request(name="x"))
                    admitted += 1
                except csf.RateLimitedError:
                    await asyncio.sleep(0.01)  # pacing the load, not waiting for state

        await asyncio.gather(*(keep_calling(stub) for stub in stubs))
        elapsed = time.monotonic() - started
        # One bucket: 5 a second plus its one token. Four buckets would admit four times that.
        assert 1 <= admitted <= 5 * elapsed + 2, f"{admitted} calls in {elapsed:.2f} s"


async def test_stubs_of_a_method_share_its_concurrency_limit(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path
) -> None:
    servicer = held()
    async with (
        serving(zookeeper.url, tenant, servicer),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        first, second = (
            consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=10)
            for _ in range(2)
        )
        await pushed(
            kazoo, tenant, consumer.rules("XIESR"), "concurrency", {"schema": 1, "consumer": 1}
        )
        holding = first.SayHello(Request(name="held"))
        await wait_until(lambda: servicer.running == 1, 5, "the first call in its handler")
        with pytest.raises(csf.ConcurrencyLimitError):
            await second.SayHello(Request(name="other stub"))
        servicer.release.set()
        assert (await holding).message == "released"
        assert servicer.calls == 1


async def test_stubs_and_channels_leave_no_rule_listener_behind(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    async with (
        serving(zookeeper.url, tenant, greeter_variant()),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        rules = consumer.rules("XIESR")
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5)
        await stub.SayHello(Request(name="first"))
        del stub
        start = rules.listener_count
        for index in range(1_000):
            stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5)
            if index % 100 == 0:
                await stub.SayHello(Request(name=str(index)))
            del stub
        for _ in range(100):
            async with consumer.channel(service="XIESR", timeout=5) as channel:
                greeter_pb2_grpc.GreeterStub(channel)
        gc.collect()
        assert rules.listener_count == start


async def test_pickers_the_directory_replaced_stop_watching_endpoint_load(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path
) -> None:
    async with (
        serving(zookeeper.url, tenant, greeter_variant(), greeter_variant()) as servers,
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        stub = consumer.stub(
            greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5, lb="least_active"
        )
        await stub.SayHello(Request(name="x"))
        directory = consumer.directory("XIESR")
        await wait_until(lambda: len(directory.endpoints) == 2, 10, "both providers listed")
        for weight in (10, 20, 30):  # each weight rule rebuilds every picker
            rule = {"schema": 1, "instances": {servers[0].address: weight}}
            await pushed(kazoo, tenant, consumer.rules("XIESR"), "weight", rule)
        watchers = [len(endpoint.watchers) for endpoint in directory.endpoints.values()]
        assert watchers == [1, 1], "only the current least_active picker watches"
