"""Breaker, retry and degrade rules pushed to ZooKeeper, applied by a real consumer."""

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable
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
    counted,
    push_rule,
    pushed,
    removed,
    serving,
    unavailable,
    wait_until,
)

Request = greeter_pb2.HelloRequest
Reply = greeter_pb2.HelloReply
IDEMPOTENT = {"SayHello": csf.MethodConfig(idempotent=True)}
BREAKER = {"schema": 1, "error_ratio": 0.5, "min_calls": 4, "window_s": 10, "open_s": 30}


async def not_found(context: Any) -> None:
    await context.abort(grpc.StatusCode.NOT_FOUND, "no such name")


class Fallback:
    """A SayHello fallback that keeps the errors it answered for."""

    def __init__(self) -> None:
        self.errors: list[BaseException] = []

    async def __call__(self, request: Any, error: BaseException) -> Any:
        self.errors.append(error)
        return Reply(message=f"fallback {request.name}")


async def outcome(call: Awaitable[Any]) -> Any:
    """The reply, or the RPC error the call raised."""
    try:
        return await call
    except grpc.aio.AioRpcError as error:
        return error


def code_of(result: Any) -> grpc.StatusCode:
    return result.code() if isinstance(result, grpc.aio.AioRpcError) else grpc.StatusCode.OK


# -- breaker ---------------------------------------------------------------------------


async def test_a_pushed_breaker_opens_on_failures_and_then_spares_the_provider(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path
) -> None:
    calls: Counter[str] = Counter()
    async with (
        serving(zookeeper.url, tenant, counted(calls, "down", unavailable)),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        plain = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5)
        fallback = Fallback()
        guarded = consumer.stub(
            greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5,
            fallback={"SayHello": fallback},
        )  # fmt: skip
        await pushed(kazoo, tenant, consumer.rules("XIESR"), "breaker", BREAKER)

        for _ in range(4):  # min_calls failures: each one reaches the provider
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await plain.SayHello(Request(name="x"))
            assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
            assert not isinstance(caught.value, csf.CircuitOpenError)
        assert calls["down"] == 4
        with pytest.raises(csf.CircuitOpenError) as open_:
            await plain.SayHello(Request(name="x"))
        assert open_.value.code() is grpc.StatusCode.UNAVAILABLE
        assert calls["down"] == 4, "the open breaker kept the call from the provider"

        # Every stub of the method shares its breaker: the stub with a fallback is
        # refused at once too, and its fallback answers without reaching the provider.
        replies = [await guarded.SayHello(Request(name="y")) for _ in range(5)]
        assert [reply.message for reply in replies] == ["fallback y"] * 5
        assert calls["down"] == 4
        assert all(isinstance(error, csf.CircuitOpenError) for error in fallback.errors)


async def test_a_new_consumer_s_very_first_call_obeys_a_standing_rule(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path
) -> None:
    calls: Counter[str] = Counter()
    await asyncio.to_thread(push_rule, kazoo, tenant, "breaker", {"schema": 1, "force": "open"})
    async with (
        serving(zookeeper.url, tenant, counted(calls, "up")),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5)
        with pytest.raises(csf.CircuitOpenError):
            await stub.SayHello(Request(name="first"))
        assert calls["up"] == 0, "the rule was in ZooKeeper before the consumer started"


async def test_a_new_consumer_s_very_first_call_takes_a_standing_timeout_rule(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path
) -> None:
    rule = {"schema": 1, "timeout_ms": 300}
    await asyncio.to_thread(push_rule, kazoo, tenant, "timeout", rule)
    async with (
        serving(zookeeper.url, tenant, Greeter),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5)
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as late:
            await stub.SayHello(Request(name="first", delay_ms=3000))
        assert late.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - started < 2.5, "the rule's 300 ms, not the stub's 5 s"


async def test_force_closed_lets_calls_through_a_tripped_breaker(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path
) -> None:
    calls: Counter[str] = Counter()
    async with (
        serving(zookeeper.url, tenant, counted(calls, "down", unavailable)),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5)
        await pushed(kazoo, tenant, consumer.rules("XIESR"), "breaker", BREAKER)
        results = [await outcome(stub.SayHello(Request(name="x"))) for _ in range(5)]
        assert isinstance(results[-1], csf.CircuitOpenError), "tripped after four failures"
        assert calls["down"] == 4

        await pushed(
            kazoo, tenant, consumer.rules("XIESR"), "breaker", {**BREAKER, "force": "closed"}
        )
        results = [await outcome(stub.SayHello(Request(name="x"))) for _ in range(6)]
        refused = [r for r in results if isinstance(r, csf.CircuitOpenError)]
        assert refused == [], "force closed: the breaker refuses nothing"
        assert [code_of(r) for r in results] == [grpc.StatusCode.UNAVAILABLE] * 6
        assert calls["down"] == 10, "every call reached the provider"


async def test_business_errors_neither_open_the_breaker_nor_reach_the_fallback(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path
) -> None:
    calls: Counter[str] = Counter()
    async with (
        serving(zookeeper.url, tenant, counted(calls, "picky", not_found)),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        fallback = Fallback()
        stub = consumer.stub(
            greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5,
            fallback={"SayHello": fallback},
        )  # fmt: skip
        await pushed(kazoo, tenant, consumer.rules("XIESR"), "breaker", BREAKER)
        results = [await outcome(stub.SayHello(Request(name="x"))) for _ in range(10)]
        assert [code_of(r) for r in results] == [grpc.StatusCode.NOT_FOUND] * 10
        assert calls["picky"] == 10
        assert fallback.errors == []


# -- retry cluster modes ---------------------------------------------------------------


async def test_failfast_makes_one_attempt_where_failover_tries_another_provider(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path
) -> None:
    calls: Counter[str] = Counter()
    async with (
        serving(zookeeper.url, tenant, counted(calls, "down", unavailable), counted(calls, "up")),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        stub = consumer.stub(
            greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5, retries=2,
            methods=IDEMPOTENT,
        )  # fmt: skip
        directory = consumer.directory("XIESR")
        await wait_until(lambda: len(directory.endpoints) == 2, 10, "both providers")

        await pushed(
            kazoo, tenant, consumer.rules("XIESR"), "retry", {"schema": 1, "cluster": "failfast"}
        )
        results = [await outcome(stub.SayHello(Request(name="x"))) for _ in range(4)]
        failed = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
        assert {r.code() for r in failed} == {grpc.StatusCode.UNAVAILABLE}
        assert calls["down"] == len(failed) >= 1, "each failing call made one attempt"
        assert calls["down"] + calls["up"] == 4

        calls.clear()
        await pushed(
            kazoo, tenant, consumer.rules("XIESR"), "retry", {"schema": 1, "cluster": "failover"}
        )
        replies = [await stub.SayHello(Request(name="x")) for _ in range(4)]
        assert [reply.message for reply in replies] == ["hi x"] * 4
        assert calls["up"] == 4
        assert calls["down"] >= 1, "some calls failed on the first provider and went on"


async def test_failsafe_logs_the_failure_and_answers_with_the_fallback_or_an_empty_reply(
    zookeeper: LocalZooKeeper,
    kazoo: KazooClient,
    tenant: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="csf.retry")
    calls: Counter[str] = Counter()
    async with (
        serving(zookeeper.url, tenant, counted(calls, "down", unavailable)),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        fallback = Fallback()
        guarded = consumer.stub(
            greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5, retries=2,
            methods=IDEMPOTENT, fallback={"SayHello": fallback},
        )  # fmt: skip
        plain = consumer.stub(
            greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5, retries=2,
            methods=IDEMPOTENT,
        )  # fmt: skip
        await pushed(
            kazoo, tenant, consumer.rules("XIESR"), "retry", {"schema": 1, "cluster": "failsafe"}
        )

        reply = await guarded.SayHello(Request(name="x"))
        assert reply.message == "fallback x"
        assert [code_of(error) for error in fallback.errors] == [grpc.StatusCode.UNAVAILABLE]
        assert calls["down"] == 1, "failsafe makes one attempt"

        reply = await plain.SayHello(Request(name="x"))
        assert reply == Reply(), "without a fallback: the empty response"
        assert calls["down"] == 2

    logged = [r for r in caplog.records if r.name == "csf.retry"]
    assert [r.levelno for r in logged] == [logging.WARNING] * 2
    for record in logged:
        assert "failsafe" in record.getMessage() and "UNAVAILABLE" in record.getMessage()


def meeting(calls: Counter[str], name: str, expected: int) -> type[Greeter]:
    """A provider whose handler answers only once `expected` handlers were called."""

    async def meet(context: Any) -> None:
        await wait_until(lambda: calls.total() >= expected, 30, "the other handlers")

    return counted(calls, name, meet)


async def test_forking_calls_retries_plus_one_providers_at_once(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path
) -> None:
    calls: Counter[str] = Counter()
    servicers = [meeting(calls, name, 3) for name in ("a", "b", "c")]
    async with (
        serving(zookeeper.url, tenant, *servicers) as servers,
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        # Each handler waits for all three: one attempt at a time would never end.
        stub = consumer.stub(
            greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=20, methods=IDEMPOTENT
        )
        directory = consumer.directory("XIESR")
        await wait_until(lambda: len(directory.endpoints) == 3, 10, "three providers")
        rule = {"schema": 1, "cluster": "forking", "retries": 2}
        await pushed(kazoo, tenant, consumer.rules("XIESR"), "retry", rule)
        reply = await stub.SayHello(Request(name="x"))
        assert reply.served_by in {server.address for server in servers}
        assert calls == {"a": 1, "b": 1, "c": 1}

        # A method not marked idempotent is never sent twice, forking or not.
        once = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5)
        await once.SayHello(Request(name="y"))
        assert sum(calls.values()) == 4


async def test_forking_answers_with_the_first_success_while_others_fail_or_hang(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path
) -> None:
    calls: Counter[str] = Counter()
    hung_cancelled = asyncio.Event()

    async def hang(context: Any) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            hung_cancelled.set()
            raise

    async def after_the_others(context: Any) -> None:
        await wait_until(lambda: calls["down"] == calls["hung"] == 1, 30, "the other two")

    servicers = [counted(calls, "down", unavailable), counted(calls, "hung", hang),
                 counted(calls, "up", after_the_others)]  # fmt: skip
    async with (
        serving(zookeeper.url, tenant, *servicers) as (_, _, up),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        stub = consumer.stub(
            greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=20, methods=IDEMPOTENT
        )
        directory = consumer.directory("XIESR")
        await wait_until(lambda: len(directory.endpoints) == 3, 10, "three providers")
        rule = {"schema": 1, "cluster": "forking", "retries": 2}
        await pushed(kazoo, tenant, consumer.rules("XIESR"), "retry", rule)
        call = stub.SayHello(Request(name="x"))
        reply = await call
        assert reply.served_by == up.address
        assert await call.trailing_metadata() is not None  # the winner's call, read back
        assert calls == {"down": 1, "hung": 1, "up": 1}
        await wait_until(hung_cancelled.is_set, 5, "the hung attempt cancelled")


# -- degrade ---------------------------------------------------------------------------


async def test_a_degrade_rule_answers_from_the_fallback_until_it_is_deleted(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path
) -> None:
    calls: Counter[str] = Counter()
    async with (
        serving(zookeeper.url, tenant, counted(calls, "up")),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        fallback = Fallback()
        guarded = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5,
                                fallback={"SayHello": fallback})  # fmt: skip
        plain = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5)
        empty = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5,
                              fallback=csf.EMPTY_REPLY)  # fmt: skip

        async def answers() -> list[str]:
            replies = [await guarded.SayHello(Request(name="x")) for _ in range(3)]
            replies.append(await empty.SayHello(Request(name="x")))
            messages = [reply.message for reply in replies]
            try:
                messages.append((await plain.SayHello(Request(name="x"))).message)
            except csf.DegradedError as refused:
                assert refused.code() is grpc.StatusCode.UNAVAILABLE
                messages.append("refused: " + (refused.details() or ""))
            return messages

        served = ["hi x"] * 5
        # Without a fallback, refused, unless the stub asked for empty replies.
        degraded = ["fallback x"] * 3 + [
            "",
            "refused: XIESR /demo.Greeter/SayHello is degraded by the degrade rule",
        ]
        assert await answers() == served
        assert calls["up"] == 5

        await pushed(kazoo, tenant, consumer.rules("XIESR"), "degrade", {"schema": 1, "all": True})
        assert await answers() == degraded
        assert calls["up"] == 5, "no degraded call reached the provider"

        await removed(kazoo, tenant, consumer.rules("XIESR"), "degrade")
        assert await answers() == served
        assert calls["up"] == 10

        only = {"schema": 1, "methods": {"SayHello": {"all": True}}}
        await pushed(kazoo, tenant, consumer.rules("XIESR"), "degrade", only)
        assert await answers() == degraded
        assert calls["up"] == 10

        other = {"schema": 1, "methods": {"StreamHellos": {"all": True}}}
        await pushed(kazoo, tenant, consumer.rules("XIESR"), "degrade", other)
        assert await answers() == served, "a rule for another method leaves SayHello alone"
        assert calls["up"] == 15
