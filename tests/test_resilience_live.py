"""Resilience with real servers, a real ZooKeeper and real consumer processes."""

import asyncio
import logging
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from kazoo.client import KazooClient

import csf
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from demo.providers import Greeter
from tests.conftest import ROOT, consumer_for, greeter_server, push_rule, serving, wait_until

Request = greeter_pb2.HelloRequest


class Counting(Greeter):
    """Counts its handlers: all it ran, and how many ran at once."""

    running = 0
    peak = 0
    handled = 0
    delay = 0.2

    async def SayHello(self, request: Any, context: Any) -> Any:
        type(self).handled += 1
        type(self).running += 1
        type(self).peak = max(type(self).peak, type(self).running)
        try:
            await asyncio.sleep(self.delay)
        finally:
            type(self).running -= 1
        return greeter_pb2.HelloReply(message="counted")


def counting(**spec: Any) -> type[Counting]:
    cls = type("CountingGreeter", (Counting,), {"running": 0, "peak": 0, "handled": 0})
    return csf.provider(service="XIESR", warmup=0, **spec)(cls)


async def test_a_deadline_passes_down_a_chain_and_cancels_the_last_hop(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    cancelled, finished = asyncio.Event(), asyncio.Event()
    consumer = consumer_for(zookeeper.url, tenant, tmp_path)

    def hop(service: str, next_service: str | None) -> type[Greeter]:
        async def say_hello(self: Greeter, request: Any, context: Any) -> Any:
            if next_service is None:  # C: sleeps 30 s, unless cancelled (or warming up)
                if request.name == "warm":
                    return greeter_pb2.HelloReply(message="warm")
                try:
                    await asyncio.sleep(30.0)
                except asyncio.CancelledError:
                    cancelled.set()
                    raise
                finished.set()
                return greeter_pb2.HelloReply(message="too late")
            stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service=next_service, timeout=5)
            return await stub.SayHello(request)

        cls = type(f"Hop{service}", (Greeter,), {"SayHello": say_hello})
        return csf.provider(service=service, warmup=0)(cls)

    servers = [greeter_server(zookeeper.url, tenant, hop(s, n))
               for s, n in (("HOPA", "HOPB"), ("HOPB", "HOPC"), ("HOPC", None))]  # fmt: skip
    async with consumer, servers[0], servers[1], servers[2]:
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="HOPA", timeout=5)
        # Warm the chain first (listings, connections): the deadline then bounds only C.
        assert (await stub.SayHello(Request(name="warm"))).message == "warm"
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.SayHello(Request(name="x"), timeout=1.0)
        assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        await wait_until(
            lambda: cancelled.is_set() or finished.is_set(), 5, "C's handler to end one way"
        )
        assert cancelled.is_set() and not finished.is_set(), "C stopped before its 30 s were up"


async def test_executes_bounds_the_handlers_running_at_once(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    servicer = counting(executes=10)
    async with (
        serving(zookeeper.url, tenant, servicer),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5)
        outcomes = await asyncio.gather(
            *(stub.SayHello(Request(name=str(i))) for i in range(50)), return_exceptions=True
        )
        refused = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
        assert servicer.peak == 10
        assert len(refused) == 40
        assert {error.code() for error in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
        assert servicer.running == 0


async def burst_of(stub: Any, calls: int) -> tuple[int, list[grpc.aio.AioRpcError]]:
    """`calls` calls at once: how many were answered, and the errors of the others."""
    outcomes = await asyncio.gather(
        *(stub.SayHello(Request(name=str(i))) for i in range(calls)), return_exceptions=True
    )
    errors = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    answered = sum(isinstance(o, greeter_pb2.HelloReply) for o in outcomes)
    assert answered + len(errors) == calls, outcomes
    return answered, errors


async def test_token_buckets_admit_their_burst_on_both_sides_and_refuse_the_rest(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path, figures: list[str]
) -> None:
    # One token every 1,000 s: 20 calls at once find exactly `burst` tokens, however fast
    # or slow this machine is.
    servicer = counting()
    servicer.delay = 0.0
    async with (
        serving(zookeeper.url, tenant, servicer) as (server,),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5)
        rules = consumer.rules("XIESR")
        rule: dict[str, object] = {"schema": 1, "rate": 0.001, "burst": 5}
        await asyncio.to_thread(push_rule, kazoo, tenant, "ratelimit", rule)
        await wait_until(lambda: rules.current["ratelimit"] is not None, 10, "the consumer rule")
        answered, refused = await burst_of(stub, 20)
        figures.append(f"consumer bucket of 5: {answered} of 20 calls at once admitted")
        assert (answered, len(refused), servicer.handled) == (5, 15, 5), refused
        assert all(isinstance(error, csf.RateLimitedError) for error in refused), refused
        assert {error.code() for error in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}

        rule = {"schema": 1, "side": "provider", "rate": 0.001, "burst": 3}
        await asyncio.to_thread(push_rule, kazoo, tenant, "ratelimit", rule)
        for side in (rules, server.rules("XIESR")):
            await wait_until(
                lambda s=side: getattr(s.current["ratelimit"], "side", "") == "provider", 10
            )
        answered, refused = await burst_of(stub, 20)
        figures.append(f"provider bucket of 3: {answered} of 20 calls at once admitted")
        assert (answered, len(refused), servicer.handled) == (3, 17, 5 + 3), refused
        # Refused by the provider (RESOURCE_EXHAUSTED on the wire), not by the consumer.
        assert not any(isinstance(error, csf.InvocationError) for error in refused), refused
        assert {error.code() for error in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}


async def test_every_permit_comes_back_after_10000_cancelled_calls(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path
) -> None:
    servicer = counting(executes=5)
    async with (
        serving(zookeeper.url, tenant, servicer),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=30)
        rules = consumer.rules("XIESR")
        rule = {"schema": 1, "consumer": 5, "max_wait_ms": 20_000}
        await asyncio.to_thread(push_rule, kazoo, tenant, "concurrency", rule)
        await wait_until(lambda: rules.current["concurrency"] is not None, 10)
        servicer.delay = 10.0
        for _ in range(20):  # 5 calls hold permits, 495 wait for one: cancel them all
            # Cancel the calls themselves: a call runs from its creation on (as in
            # grpc.aio), so cancelling a task that wraps it before it ran leaves it running.
            calls = [stub.SayHello(Request(name="x")) for _ in range(500)]
            await wait_until(lambda: servicer.running == 5, 5, "five calls in flight")
            for call in calls:
                call.cancel()
            await asyncio.gather(*calls, return_exceptions=True)
            await wait_until(lambda: servicer.running == 0, 5, "the provider's handlers released")
        servicer.delay, servicer.peak = 2.0, 0
        replies = await asyncio.gather(*(stub.SayHello(Request(name="y")) for _ in range(5)))
        assert len(replies) == 5 and servicer.peak == 5, "five permits on each side, at once"


async def test_a_forced_open_breaker_reaches_two_consumer_processes(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, figures: list[str]
) -> None:
    async with serving(zookeeper.url, tenant, Greeter):
        watchers = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.consumer_process",
                "--registry",
                zookeeper.url,
                "--tenant",
                tenant,
                "--seconds",
                "60",
                cwd=ROOT,
                stdout=asyncio.subprocess.PIPE,
                stdin=asyncio.subprocess.DEVNULL,
            )
            for _ in range(2)
        ]
        try:

            async def next_line(process: Any) -> str:
                line = await asyncio.wait_for(process.stdout.readline(), 30)
                return str(line.decode().strip())

            assert [await next_line(w) for w in watchers] == ["provider", "provider"]
            pushed = time.monotonic()
            await asyncio.to_thread(
                push_rule, kazoo, tenant, "breaker", {"schema": 1, "force": "open"}
            )
            assert [await next_line(w) for w in watchers] == ["fallback", "fallback"]
            took = time.monotonic() - pushed
            figures.append(f"forced-open breaker reached 2 consumer processes in {took:.3f}s")
            path = f"/busidomain/csf/{tenant}/XIESR/configs/breaker"
            await asyncio.to_thread(kazoo.delete, path)
            assert [await next_line(w) for w in watchers] == ["provider", "provider"]
        finally:
            for watcher in watchers:
                if watcher.returncode is None:
                    watcher.kill()
                await watcher.wait()


@pytest.mark.parametrize(
    "bad",
    [
        b"{not json",
        {"schema": 1, "rate": -5},
        {"schema": 1, "rate": "fast"},
        {"schema": 1, "rate": 10, "colour": "red"},
        {"schema": 1, "rate": 10, "burst": 0.5},
    ],
)
async def test_invalid_rules_are_refused_and_the_last_good_one_stays(
    bad: object,
    zookeeper: LocalZooKeeper,
    kazoo: KazooClient,
    tenant: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="csf.rules")
    async with (
        serving(zookeeper.url, tenant, Greeter),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR")
        rules = consumer.rules("XIESR")
        # Three tokens and one more every 100 s: exactly 3 of 20 calls at once get through,
        # a count that none of the refused documents, were it applied, would give.
        good = {"schema": 1, "rate": 0.01, "burst": 3}
        await asyncio.to_thread(push_rule, kazoo, tenant, "ratelimit", good)
        await wait_until(lambda: rules.current["ratelimit"] is not None, 10)
        await asyncio.to_thread(push_rule, kazoo, tenant, "ratelimit", bad)
        await wait_until(lambda: rules.rejected == 1, 10, "the rejection")
        assert "rejected ratelimit rule: ratelimit" in caplog.text
        answered, refused = await burst_of(stub, 20)
        assert (answered, len(refused)) == (3, 17), "the good rule (a burst of 3) still holds"
        assert all(isinstance(error, csf.RateLimitedError) for error in refused), refused
