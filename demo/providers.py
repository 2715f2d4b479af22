"""The demo's provider: the Greeter service as microservice XIESR."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

import csf
from demo import greeter_pb2, greeter_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]


@csf.provider(service="XIESR", version="1.0.0", weight=100, group="normal", tags={"zone": "hz"})
class Greeter(greeter_pb2_grpc.GreeterServicer):
    def __init__(self, address: Callable[[], str]) -> None:
        self._address = address

    def _reply(self, message: str) -> greeter_pb2.HelloReply:
        return greeter_pb2.HelloReply(message=message, served_by=self._address())

    async def SayHello(
        self, request: greeter_pb2.HelloRequest, context: Context
    ) -> greeter_pb2.HelloReply:
        if request.delay_ms:
            await asyncio.sleep(request.delay_ms / 1000)
        return self._reply(f"hi {request.name}")

    async def StreamHellos(
        self, request: greeter_pb2.HelloRequest, context: Context
    ) -> AsyncIterator[greeter_pb2.HelloReply]:
        for index in range(request.count or 3):
            yield self._reply(f"hi {request.name} #{index}")

    async def CollectHellos(
        self,
        request_iterator: AsyncIterator[greeter_pb2.HelloRequest],
        context: Context,
    ) -> greeter_pb2.HelloReply:
        names = [request.name async for request in request_iterator]
        return self._reply(f"hi {', '.join(names)}")

    async def Chat(
        self,
        request_iterator: AsyncIterator[greeter_pb2.HelloRequest],
        context: Context,
    ) -> AsyncIterator[greeter_pb2.HelloReply]:
        async for request in request_iterator:
            yield self._reply(f"hi {request.name}")


async def serve(registry: str, tenant: str, port: int = 0) -> None:
    """Run one provider process until SIGTERM/SIGINT; prints 'serving HOST:PORT' when up."""
    server = csf.Server(registry=registry, tenant=tenant, host="127.0.0.1", port=port)
    server.add(Greeter(lambda: server.address))
    async with server:
        print(f"serving {server.address}", flush=True)
        await server.wait_closed()
