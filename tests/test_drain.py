"""A stopping provider drains: after deregistering and turning NOT_SERVING, the calls
already in its handlers run to their end within `grace`."""

import asyncio
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from kazoo.client import KazooClient

import csf
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from demo.providers import Greeter
from tests.conftest import greeter_server, wait_until


class Held(Greeter):
    entered: asyncio.Event
    release: asyncio.Event

    async def SayHello(self, request: Any, context: Any) -> Any:
        type(self).entered.set()
        await type(self).release.wait()
        return greeter_pb2.HelloReply(message="drained")


async def test_a_call_in_flight_when_the_provider_stops_is_served_to_its_end(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str
) -> None:
    servicer = csf.provider(service="XIESR", warmup=0)(
        type("HeldGreeter", (Held,), {"entered": asyncio.Event(), "release": asyncio.Event()})
    )
    server = greeter_server(zookeeper.url, tenant, servicer, deregister_wait=0, grace=30)
    await server.start()
    path = server.registrations[0].path
    async with grpc.aio.insecure_channel(server.address) as channel:
        in_flight = asyncio.ensure_future(
            greeter_pb2_grpc.GreeterStub(channel).SayHello(
                greeter_pb2.HelloRequest(name="x"), timeout=30
            )
        )
        await wait_until(servicer.entered.is_set, 5, "the call in its handler")
        stopping = asyncio.ensure_future(server.stop())
        health = health_pb2_grpc.HealthStub(channel)

        async def not_serving() -> bool:
            try:
                reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
            except grpc.aio.AioRpcError as error:
                return error.code() is grpc.StatusCode.UNAVAILABLE  # refusing new calls
            return bool(reply.status == health_pb2.HealthCheckResponse.NOT_SERVING)

        await wait_until(not_serving, 10, "NOT_SERVING or refusing new calls")
        assert await asyncio.to_thread(kazoo.exists, path) is None, "deregistered first"
        assert not in_flight.done(), "the call in flight is still being served"
        servicer.release.set()
        assert (await in_flight).message == "drained"
        await stopping
