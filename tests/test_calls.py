"""Typed stub calls end to end, through a real ZooKeeper and real gRPC servers."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

import csf
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from tests.conftest import consumer_for, greeter_server, wait_until

Request = greeter_pb2.HelloRequest


async def test_all_four_kinds_of_call(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    async with (
        greeter_server(zookeeper.url, tenant) as server,
        consumer_for(zookeeper.url, tenant, tmp_path) as client,
    ):
        stub = client.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5)

        reply = await stub.SayHello(Request(name="ann"))
        assert (reply.message, reply.served_by) == ("hi ann", server.address)

        streamed = [r.message async for r in stub.StreamHellos(Request(name="bob", count=3))]
        assert streamed == ["hi bob #0", "hi bob #1", "hi bob #2"]

        async def names() -> AsyncIterator[greeter_pb2.HelloRequest]:
            for name in ("a", "b", "c"):
                yield Request(name=name)

        collected = await stub.CollectHellos(names())
        assert collected.message == "hi a, b, c"

        chat = stub.Chat()
        replies = []
        for name in ("x", "y"):
            await chat.write(Request(name=name))
            replies.append((await chat.read()).message)
        await chat.done_writing()
        assert replies == ["hi x", "hi y"]
        assert await chat.read() is grpc.aio.EOF
        assert await chat.code() is grpc.StatusCode.OK

        endpoint = client.directory("XIESR").endpoints[server.address]
        await wait_until(lambda: endpoint.calls == 4, 5, "every outcome recorded")
        assert (endpoint.active, endpoint.failures) == (0, 0)


async def test_the_call_object_behaves_like_grpc_aio(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    async with (
        greeter_server(zookeeper.url, tenant),
        consumer_for(zookeeper.url, tenant, tmp_path) as client,
    ):
        stub = client.stub(greeter_pb2_grpc.GreeterStub, service="XIESR")
        call = stub.SayHello(Request(name="ann"))
        done: list[object] = []
        call.add_done_callback(done.append)
        assert (await call).message == "hi ann"
        assert await call.code() is grpc.StatusCode.OK
        assert call.done() and done == [call]
        assert isinstance(await call.trailing_metadata(), grpc.aio.Metadata)

        slow = stub.SayHello(Request(name="slow", delay_ms=5_000))
        assert slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        assert await slow.code() is grpc.StatusCode.CANCELLED


async def test_every_call_has_a_deadline(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    async with (
        greeter_server(zookeeper.url, tenant),
        consumer_for(zookeeper.url, tenant, tmp_path) as client,
    ):
        stub = client.stub(
            greeter_pb2_grpc.GreeterStub,
            service="XIESR",
            timeout=5.0,
            methods={"SayHello": csf.MethodConfig(timeout=0.3)},
        )
        # The method's 0.3 s, not the stub's 5 s: a 3 s handler would answer within 5 s.
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.SayHello(Request(name="slow", delay_ms=3_000))
        assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.SayHello(Request(name="slow", delay_ms=3_000), timeout=0.2)
        assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED


async def test_no_provider_is_an_unavailable_rpc_error(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    async with consumer_for(zookeeper.url, tenant, tmp_path) as client:
        stub = client.stub(greeter_pb2_grpc.GreeterStub, service="NOBODY", timeout=2)
        with pytest.raises(csf.NoProviderError) as caught:
            await stub.SayHello(Request(name="x"))
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
        with pytest.raises(csf.NoProviderError) as caught:
            async for _ in stub.StreamHellos(Request(name="x")):
                pass
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE


async def test_the_first_call_waits_for_the_first_listing(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    async with greeter_server(zookeeper.url, tenant) as server:
        for _ in range(3):
            async with consumer_for(zookeeper.url, tenant, tmp_path / "fresh") as client:
                stub = client.stub(greeter_pb2_grpc.GreeterStub, service="XIESR")
                assert client.directory("XIESR").endpoints == {}
                reply = await stub.SayHello(Request(name="first"))
                assert reply.served_by == server.address


async def test_static_registry_connects_directly(tenant: str, tmp_path: Path) -> None:
    servers = [greeter_server("static://127.0.0.1:1", tenant) for _ in range(2)]
    async with servers[0], servers[1]:
        url = "static://" + ",".join(server.address for server in servers)
        async with consumer_for(url, tenant, tmp_path) as client:
            stub = client.stub(greeter_pb2_grpc.GreeterStub, service="XIESR")
            served = {(await stub.SayHello(Request(name="x"))).served_by for _ in range(4)}
            assert served == {server.address for server in servers}


async def test_a_port_in_use_is_a_config_error(tenant: str) -> None:
    async with greeter_server("static://127.0.0.1:1", tenant) as first:
        second = greeter_server("static://127.0.0.1:1", tenant, port=first.port)
        with pytest.raises(csf.ConfigError, match=f"port: could not bind 127.0.0.1:{first.port}"):
            await second.start()
