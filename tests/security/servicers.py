"""What the security tests share: provider classes that count the calls their handlers
saw, and a call made without CSF (a raw grpc.aio channel, any metadata)."""

from typing import Any

import grpc

import csf
from csf.auth import APP_KEY, TOKEN_KEY
from demo import greeter_pb2, greeter_pb2_grpc
from demo.providers import Greeter


@csf.provider(service="XIESR", version="1.0.0", warmup=0)
class CountingGreeter(Greeter):
    """Counts the calls that reached its handler."""

    handled = 0

    async def SayHello(self, request: Any, context: Any) -> Any:
        type(self).handled += 1
        return await super().SayHello(request, context)


@csf.provider(service="XIESR", version="1.0.0", warmup=0)
class SizingGreeter(Greeter):
    """Answers with the size of the name only, so replies stay small whatever the request."""

    handled = 0

    async def SayHello(self, request: Any, context: Any) -> Any:
        type(self).handled += 1
        return greeter_pb2.HelloReply(message=str(len(request.name)))


async def raw_call(channel: grpc.aio.Channel, metadata: Any = None) -> grpc.StatusCode:
    """The status of one SayHello on `channel` (closed after), sent with `metadata`."""
    async with channel:
        try:
            await greeter_pb2_grpc.GreeterStub(channel).SayHello(
                greeter_pb2.HelloRequest(name="x"), metadata=metadata, timeout=5
            )
        except grpc.aio.AioRpcError as error:
            return error.code()
    return grpc.StatusCode.OK


async def call_with_token(address: str, token: str) -> grpc.StatusCode:
    """A raw call as app order-web presenting `token`."""
    metadata = ((APP_KEY, "order-web"), (TOKEN_KEY, token))
    return await raw_call(grpc.aio.insecure_channel(address), metadata)
