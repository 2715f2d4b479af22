"""Graceful shutdown: deregister, keep serving while consumers notice, drain, stop."""

import asyncio
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from kazoo.client import KazooClient

import csf
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from demo.providers import Greeter
from tests.conftest import ProviderProcess, greeter_server, wait_until

StartProvider = Callable[..., Awaitable[ProviderProcess]]


async def test_stop_deregisters_serves_during_the_wait_then_drains(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str
) -> None:
    # Wide windows: the order of the steps is under test, not this machine's speed.
    server = greeter_server(zookeeper.url, tenant, deregister_wait=3.0, grace=5.0)
    await server.start()
    path = server.registrations[0].path
    async with grpc.aio.insecure_channel(server.address) as channel:
        direct = greeter_pb2_grpc.GreeterStub(channel)
        in_flight = asyncio.ensure_future(
            direct.SayHello(greeter_pb2.HelloRequest(name="slow", delay_ms=3_500))
        )
        stopping = asyncio.ensure_future(server.stop())
        await wait_until(
            lambda: asyncio.to_thread(lambda: kazoo.exists(path) is None), 5, "deregistration"
        )
        # Deregistered but still in its wait: consumers that have not noticed are served.
        assert not stopping.done()
        reply = await direct.SayHello(greeter_pb2.HelloRequest(name="late"))
        assert reply.message == "hi late"
        await stopping
        assert (await in_flight).message == "hi slow"
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await direct.SayHello(greeter_pb2.HelloRequest(name="after"), timeout=1)
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_stops_a_provider_process_gracefully(
    zookeeper: LocalZooKeeper,
    kazoo: KazooClient,
    tenant: str,
    tmp_path: Path,
    providers: StartProvider,
    signum: signal.Signals,
) -> None:
    provider = await providers(zookeeper.url, tenant)
    path = f"/busidomain/csf/{tenant}/XIESR/clusters/defaultCluster/normal/{provider.address}"
    assert await asyncio.to_thread(kazoo.exists, path) is not None
    async with csf.Consumer(
        registry=zookeeper.url, tenant=tenant, app="t", snapshot_dir=tmp_path
    ) as consumer:
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR")
        slow = stub.SayHello(greeter_pb2.HelloRequest(name="slow", delay_ms=800))
        endpoints = consumer.directory("XIESR").endpoints

        def slow_call_in_flight() -> bool:
            endpoint = endpoints.get(provider.address)
            return endpoint is not None and endpoint.active == 1

        await wait_until(slow_call_in_flight, 5, "the slow call in flight")
        provider.signal(signum)
        assert (await slow).message == "hi slow"
        assert await asyncio.wait_for(provider.process.wait(), 20) == 0
    assert await asyncio.to_thread(kazoo.exists, path) is None


def hung_greeter() -> type[Greeter]:
    """A provider class whose every method starts (noted in `entered`) and never ends."""
    entered: list[str] = []

    async def hang(name: str) -> None:
        entered.append(name)
        await asyncio.Event().wait()

    class Hung(Greeter):
        async def SayHello(self, request: Any, context: Any) -> Any:
            await hang("unary")

        async def StreamHellos(self, request: Any, context: Any) -> AsyncIterator[Any]:
            yield greeter_pb2.HelloReply(message="first")
            await hang("server_stream")

        async def CollectHellos(self, requests: AsyncIterator[Any], context: Any) -> Any:
            _ = [request async for request in requests]
            await hang("client_stream")

        async def Chat(self, requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
            async for request in requests:
                yield greeter_pb2.HelloReply(message=request.name)
                await hang("bidi")

    Hung.entered = entered  # type: ignore[attr-defined]
    return csf.provider(service="XIESR", warmup=0)(Hung)


async def _requests() -> AsyncIterator[greeter_pb2.HelloRequest]:
    yield greeter_pb2.HelloRequest(name="x")


async def _call(stub: greeter_pb2_grpc.GreeterStub, kind: str) -> object:
    request = greeter_pb2.HelloRequest(name="x")
    if kind == "unary":
        return await stub.SayHello(request, timeout=30)
    if kind == "server_stream":
        return [reply async for reply in stub.StreamHellos(request, timeout=30)]
    if kind == "client_stream":
        return await stub.CollectHellos(_requests(), timeout=30)
    return [reply async for reply in stub.Chat(_requests(), timeout=30)]


@pytest.mark.parametrize("kind", ["unary", "server_stream", "client_stream", "bidi"])
async def test_a_call_still_running_when_the_grace_ends_fails_with_unavailable(
    zookeeper: LocalZooKeeper, tenant: str, kind: str
) -> None:
    servicer = hung_greeter()
    server = greeter_server(zookeeper.url, tenant, servicer, grace=0.5)
    await server.start()
    async with grpc.aio.insecure_channel(server.address) as channel:
        call = asyncio.ensure_future(_call(greeter_pb2_grpc.GreeterStub(channel), kind))
        entered = servicer.entered  # type: ignore[attr-defined]
        await wait_until(lambda: entered == [kind], 5, "the call in its handler")
        await server.stop()
        # Not CancelledError, not a hang: a status that consumers retry where allowed.
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await asyncio.wait_for(call, 10)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
