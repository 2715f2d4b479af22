"""Concurrency limits on both sides, through pushed rules, and CSF's own refusals
(limits, no provider) never retried as if a provider had failed."""

import asyncio
from pathlib import Path
from typing import Any

import grpc
import pytest
from kazoo.client import KazooClient

import csf
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from demo.providers import Greeter
from tests.conftest import (
    consumer_for,
    consumer_with_filter,
    greeter_variant,
    pushed,
    serving,
    wait_until,
)

Request = greeter_pb2.HelloRequest


class Held(Greeter):
    """Each call waits for `release`; counts the calls and how many run at once."""

    release: asyncio.Event
    calls = 0
    running = 0
    peak = 0

    async def SayHello(self, request: Any, context: Any) -> Any:
        cls = type(self)
        cls.calls += 1
        cls.running += 1
        cls.peak = max(cls.peak, cls.running)
        try:
            await cls.release.wait()
        finally:
            cls.running -= 1
        return greeter_pb2.HelloReply(message="released")


def held() -> type[Held]:
    cls = type("HeldGreeter", (Held,), {"release": asyncio.Event()})
    return csf.provider(service="XIESR", warmup=0)(cls)


async def test_over_the_consumer_limit_a_call_waits_for_a_permit_within_max_wait(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path
) -> None:
    servicer = held()
    async with (
        serving(zookeeper.url, tenant, servicer),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=20)
        rule = {"schema": 1, "consumer": 1, "max_wait_ms": 15_000}
        await pushed(kazoo, tenant, consumer.rules("XIESR"), "concurrency", rule)

        first = stub.SayHello(Request(name="first"))
        await wait_until(lambda: servicer.running == 1, 5, "the first call in its handler")
        second = stub.SayHello(Request(name="second"))
        servicer.release.set()
        assert [(await first).message, (await second).message] == ["released", "released"]
        assert servicer.peak == 1, "the waiting call ran only after the first gave its permit"


async def test_over_the_consumer_limit_with_no_wait_a_call_is_refused_unsent(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path
) -> None:
    servicer = held()
    async with (
        serving(zookeeper.url, tenant, servicer),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=20)
        rule = {"schema": 1, "consumer": 2}
        await pushed(kazoo, tenant, consumer.rules("XIESR"), "concurrency", rule)

        holding = [stub.SayHello(Request(name=str(i))) for i in range(2)]
        await wait_until(lambda: servicer.running == 2, 5, "two calls in their handlers")
        with pytest.raises(csf.ConcurrencyLimitError) as caught:
            await stub.SayHello(Request(name="third"), timeout=5)
        assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert servicer.calls == 2, "the refused call never reached the provider"
        servicer.release.set()
        assert [(await call).message for call in holding] == ["released"] * 2


async def test_the_concurrency_rule_s_provider_field_bounds_handlers_at_once(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path
) -> None:
    servicer = held()
    async with (
        serving(zookeeper.url, tenant, servicer) as (server,),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=20)
        rule = {"schema": 1, "provider": 2}
        await pushed(kazoo, tenant, server.rules("XIESR"), "concurrency", rule)

        calls = [stub.SayHello(Request(name=str(i))) for i in range(6)]
        await wait_until(lambda: sum(call.done() for call in calls) == 4, 10, "4 refusals")
        assert servicer.running == 2
        servicer.release.set()
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        refused = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
        assert {error.code() for error in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
        assert (len(refused), servicer.peak, servicer.calls) == (4, 2, 2)


class Attempts:
    """A consumer filter counting the attempts that pass it."""

    def __init__(self) -> None:
        self.count = 0

    async def __call__(self, inv: csf.Invocation, next: csf.Invoker, /) -> Any:
        self.count += 1
        return await next(inv)


async def test_csf_s_own_refusals_are_not_retried_but_provider_failures_are(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    attempts = Attempts()
    consumer = consumer_with_filter(
        zookeeper.url, tenant, tmp_path, after="retry", filter_=attempts
    )

    async def unavailable(self: Greeter, request: Any, context: Any) -> Any:
        await context.abort(grpc.StatusCode.UNAVAILABLE, "failing on purpose")

    failing = greeter_variant(group="gray")
    failing.SayHello = unavailable  # type: ignore[method-assign]
    idempotent = {"SayHello": csf.MethodConfig(idempotent=True)}
    async with serving(zookeeper.url, tenant, failing), consumer:
        nowhere = consumer.stub(
            greeter_pb2_grpc.GreeterStub, service="XIESR", group="blue", methods=idempotent
        )
        with pytest.raises(csf.NoProviderError) as caught:
            await nowhere.SayHello(Request(name="x"))
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
        assert attempts.count == 1, "no provider is CSF's verdict: another try cannot help"

        attempts.count = 0
        gray = consumer.stub(
            greeter_pb2_grpc.GreeterStub, service="XIESR", group="gray", methods=idempotent
        )
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await gray.SayHello(Request(name="x"))
        assert failed.value.code() is grpc.StatusCode.UNAVAILABLE
        assert not isinstance(failed.value, csf.CsfError)
        assert attempts.count == 3, "a provider's UNAVAILABLE is retried: 1 + 2 retries"
