"""Every kind of call passes the consumer chain: breaker, rate limit, concurrency, load
accounting, tracing and metrics hold for server, client and bidi streams as for unary
calls, on a real ZooKeeper and a real provider."""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from kazoo.client import KazooClient
from opentelemetry.trace import SpanKind

import csf
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from demo.providers import Greeter
from tests.conftest import consumer_for, pushed, serving, wait_until
from tests.observability.memory import Telemetry, server

Request = greeter_pb2.HelloRequest
KINDS = ("unary", "server_stream", "client_stream", "bidi")
METHOD_OF = {
    "unary": "SayHello",
    "server_stream": "StreamHellos",
    "client_stream": "CollectHellos",
    "bidi": "Chat",
}


async def make_call(stub: Any, kind: str) -> str:
    """One call of `kind` on the demo Greeter, to its end; its replies joined."""
    if kind == "unary":
        return str((await stub.SayHello(Request(name="x"))).message)
    if kind == "server_stream":
        return ",".join(
            [reply.message async for reply in stub.StreamHellos(Request(name="x", count=2))]
        )
    if kind == "client_stream":
        return str((await stub.CollectHellos(iter([Request(name="a"), Request(name="b")]))).message)
    call = stub.Chat()
    await call.write(Request(name="a"))
    await call.done_writing()
    return ",".join([reply.message async for reply in call])


def counting(calls: Counter[str], hold: asyncio.Event | None = None) -> type[Greeter]:
    """A Greeter counting each method's calls; with `hold`, every handler first waits for it."""

    def counted(name: str) -> Callable[..., Any]:
        method = getattr(Greeter, name)
        streaming_reply = name in ("StreamHellos", "Chat")

        async def unary(self: Greeter, request: Any, context: Any) -> Any:
            calls[name] += 1
            if hold is not None:
                await hold.wait()
            return await method(self, request, context)

        async def streamed(self: Greeter, request: Any, context: Any) -> AsyncIterator[Any]:
            calls[name] += 1
            if hold is not None:
                await hold.wait()
            async for reply in method(self, request, context):
                yield reply

        return streamed if streaming_reply else unary

    body = {name: counted(name) for name in METHOD_OF.values()}
    return csf.provider(service="XIESR", warmup=0)(type("CountingGreeter", (Greeter,), body))


async def outcome(call: Awaitable[str]) -> str | BaseException:
    try:
        return await call
    except grpc.RpcError as error:
        return error


@pytest.mark.parametrize("kind", KINDS)
async def test_an_open_breaker_refuses_every_kind_of_call(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path, kind: str
) -> None:
    calls: Counter[str] = Counter()
    async with (
        serving(zookeeper.url, tenant, counting(calls)),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5)
        assert await make_call(stub, kind), "served before the rule"
        await pushed(
            kazoo, tenant, consumer.rules("XIESR"), "breaker", {"schema": 1, "force": "open"}
        )
        for _ in range(3):
            refused = await outcome(make_call(stub, kind))
            assert isinstance(refused, csf.CircuitOpenError), refused
            assert refused.code() is grpc.StatusCode.UNAVAILABLE
        assert calls[METHOD_OF[kind]] == 1, "no refused call reached the provider"


@pytest.mark.parametrize("kind", KINDS)
async def test_a_rate_limit_takes_a_token_per_call_and_per_stream_opened(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path, kind: str
) -> None:
    calls: Counter[str] = Counter()
    async with (
        serving(zookeeper.url, tenant, counting(calls)),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5)
        rule = {"schema": 1, "side": "consumer", "rate": 0.2, "burst": 1}
        await pushed(kazoo, tenant, consumer.rules("XIESR"), "ratelimit", rule)
        assert await make_call(stub, kind), "the one token"
        refused = await outcome(make_call(stub, kind))
        assert isinstance(refused, csf.RateLimitedError), refused
        assert refused.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert calls[METHOD_OF[kind]] == 1


async def test_an_open_stream_holds_a_concurrency_permit_until_it_ends(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path
) -> None:
    calls: Counter[str] = Counter()
    hold = asyncio.Event()
    async with (
        serving(zookeeper.url, tenant, counting(calls, hold)),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=10)
        rule = {"schema": 1, "consumer": 1}
        await pushed(kazoo, tenant, consumer.rules("XIESR"), "concurrency", rule)
        first = stub.StreamHellos(Request(name="x", count=2))
        await wait_until(lambda: calls["StreamHellos"] == 1, 5, "the first stream open")
        refused = await outcome(make_call(stub, "server_stream"))
        assert isinstance(refused, csf.ConcurrencyLimitError), refused
        hold.set()
        assert [reply.message async for reply in first] == ["hi x #0", "hi x #1"]
        await wait_until(
            lambda: (
                consumer.directory("XIESR").endpoints
                and all(e.active == 0 for e in consumer.directory("XIESR").endpoints.values())
            ),
            5,
            "the ended stream no longer counted on its provider",
        )
        assert await make_call(stub, "server_stream") == "hi x #0,hi x #1", "permit given back"


async def test_failing_streams_open_the_breaker(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path
) -> None:
    calls: Counter[str] = Counter()

    async def failing(self: Greeter, request: Any, context: Any) -> AsyncIterator[Any]:
        calls["StreamHellos"] += 1
        yield greeter_pb2.HelloReply(message="one")
        await context.abort(grpc.StatusCode.UNAVAILABLE, "failing on purpose")

    servicer = csf.provider(service="XIESR", warmup=0)(
        type("FailingStreams", (Greeter,), {"StreamHellos": failing})
    )
    async with (
        serving(zookeeper.url, tenant, servicer),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5)
        breaker = {"schema": 1, "min_calls": 2, "error_ratio": 0.5, "open_s": 60}
        await pushed(kazoo, tenant, consumer.rules("XIESR"), "breaker", breaker)
        for _ in range(2):
            failed = await outcome(make_call(stub, "server_stream"))
            assert isinstance(failed, grpc.aio.AioRpcError)
            assert failed.code() is grpc.StatusCode.UNAVAILABLE
            assert not isinstance(failed, csf.CircuitOpenError)

        async def tripped() -> bool:
            return isinstance(await outcome(make_call(stub, "server_stream")), csf.CircuitOpenError)

        await wait_until(tripped, 5, "the breaker open after two failed streams")
        assert calls["StreamHellos"] == 2


async def test_every_kind_of_call_is_traced_to_the_provider_and_measured(
    zookeeper: LocalZooKeeper,
    tenant: str,
    tmp_path: Path,
    telemetry: Telemetry,
) -> None:
    provider = server(zookeeper, tenant, Greeter(lambda: ""), telemetry)
    async with (
        provider,
        consumer_for(zookeeper.url, tenant, tmp_path, "web", telemetry.config) as consumer,
    ):
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5)
        for kind in KINDS:
            assert await make_call(stub, kind)
        # A unary call has one span (its attempt's too); a stream, one span for its life.
        await wait_until(
            lambda: len([s for s in telemetry.finished() if s.kind is SpanKind.CLIENT]) == 4,
            5,
            "every call's client spans ended",
        )

    spans = telemetry.finished()
    by_id = {span.context.span_id: span for span in spans}
    servers = {s.attributes["rpc.method"]: s for s in spans if s.kind is SpanKind.SERVER}
    assert set(servers) == set(METHOD_OF.values())
    for method, served in servers.items():
        assert served.parent is not None, f"{method}: no trace context reached the provider"
        client = by_id[served.parent.span_id]
        assert client.kind is SpanKind.CLIENT and client.attributes["rpc.method"] == method
        assert client.context.trace_id == served.context.trace_id
        assert client.attributes["rpc.grpc.status_code"] == 0
        assert client.attributes["csf.provider"] == provider.address
    measured = Counter(p.attributes["rpc.method"] for p in telemetry.points("csf.client.calls"))
    assert measured == Counter(METHOD_OF.values())
    active = {
        p.attributes["rpc.method"]: p.value for p in telemetry.points("csf.client.active_calls")
    }
    assert active == dict.fromkeys(METHOD_OF.values(), 0), "every stream counted out at its end"
