"""A provider that stops while calls are in flight on it: the consumer keeps its channel
until those calls are over, so each completes (or fails with a status), whatever its
kind, however long past the provider's removal it runs."""

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import csf
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from demo.providers import Greeter
from tests.conftest import consumer_for, greeter_server, wait_until

Request = greeter_pb2.HelloRequest
# Longer than the fixed 5 s a removed provider's channel used to be given.
CALL_SECONDS = 6.0


class Slow(Greeter):
    """Every call takes CALL_SECONDS; `entered` counts the handlers running."""

    entered = 0

    async def SayHello(self, request: Any, context: Any) -> Any:
        type(self).entered += 1
        await asyncio.sleep(CALL_SECONDS)
        return greeter_pb2.HelloReply(message="unary done")

    async def StreamHellos(self, request: Any, context: Any) -> AsyncIterator[Any]:
        type(self).entered += 1
        yield greeter_pb2.HelloReply(message="first")
        await asyncio.sleep(CALL_SECONDS)
        yield greeter_pb2.HelloReply(message="last")

    async def Chat(self, request_iterator: Any, context: Any) -> AsyncIterator[Any]:
        type(self).entered += 1
        async for request in request_iterator:
            await asyncio.sleep(CALL_SECONDS)
            yield greeter_pb2.HelloReply(message=f"chat {request.name}")


async def test_calls_in_flight_on_a_stopping_provider_complete(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    servicer = csf.provider(service="XIESR", warmup=0)(type("SlowGreeter", (Slow,), {}))
    server = greeter_server(zookeeper.url, tenant, servicer, deregister_wait=0, grace=30)
    async with consumer_for(zookeeper.url, tenant, tmp_path) as consumer:
        await server.start()
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=12)
        unary = asyncio.ensure_future(stub.SayHello(Request(name="x")))
        server_stream = stub.StreamHellos(Request(name="x"))
        bidi = stub.Chat()
        await bidi.write(Request(name="x"))
        await bidi.done_writing()
        await wait_until(lambda: servicer.entered == 3, 10, "three calls in their handlers")

        stopping = asyncio.ensure_future(server.stop())
        directory = consumer.directory("XIESR")
        await wait_until(lambda: not directory.endpoints, 10, "the consumer saw it go")
        removed_at = time.monotonic()

        assert (await unary).message == "unary done"
        assert [reply.message async for reply in server_stream] == ["first", "last"]
        assert [reply.message async for reply in bidi] == ["chat x"]
        assert time.monotonic() - removed_at > 5.0, "the calls outlived the old fixed grace"
        await stopping
