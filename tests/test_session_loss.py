"""Sessions lost: when ZooKeeper expires the sessions of a provider and of a consumer
(their link blackholed past the session timeout), the provider registers again under a
new session and the consumer re-lists in full, so what changed meanwhile reaches it."""

import asyncio
from pathlib import Path

from kazoo.client import KazooClient

from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from tests.conftest import consumer_for, greeter_server, instance_path, wait_until, zk_registry
from tests.faultproxy import FaultProxy


async def test_after_their_sessions_expire_providers_and_consumers_carry_on(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path
) -> None:
    proxy = FaultProxy("127.0.0.1", zookeeper.port)
    await proxy.start()
    # The consumer's session is the shorter: once the provider's has expired, so has it.
    consumer_url = f"zk://{proxy.address}?session_timeout=2"
    provider_url = f"zk://{proxy.address}?session_timeout=3"
    try:
        async with (
            greeter_server(provider_url, tenant) as first,
            consumer_for(consumer_url, tenant, tmp_path) as consumer,
        ):
            stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR")
            endpoints = consumer.directory("XIESR").endpoints
            await wait_until(lambda: first.address in endpoints, 10, "the first provider")
            registry = zk_registry(first)
            old_session = registry.session_id
            path = instance_path(tenant, first.port)

            proxy.blackhole()
            await wait_until(
                lambda: asyncio.to_thread(lambda: kazoo.exists(path) is None),
                20,
                "ZooKeeper expiring the provider's session",
            )
            # Registered while the consumer cannot hear of it: only a full re-list tells.
            async with greeter_server(zookeeper.url, tenant) as meanwhile:
                proxy.heal()

                def registered_again() -> bool:
                    stat = kazoo.exists(path)
                    session = registry.session_id
                    return stat is not None and stat.ephemeralOwner == session != old_session

                await wait_until(lambda: asyncio.to_thread(registered_again), 30, "re-registration")
                await wait_until(lambda: meanwhile.address in endpoints, 30, "the re-list")
                async with greeter_server(zookeeper.url, tenant) as later:
                    await wait_until(lambda: later.address in endpoints, 15, "watches set anew")
                    served = {
                        (await stub.SayHello(greeter_pb2.HelloRequest(name=str(i)))).served_by
                        for i in range(30)
                    }
                    assert served == {first.address, meanwhile.address, later.address}
    finally:
        await proxy.close()
