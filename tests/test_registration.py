"""A provider's znode: where it is, what it holds, and who owns it after a session ends."""

import asyncio
import os
import time

from kazoo.client import KazooClient

from csf.registry import Instance
from csf.testing.zookeeper import LocalZooKeeper, free_port
from tests.conftest import expire_session, greeter_server, instance_path, wait_until, zk_registry

GREETER_METHODS = ("SayHello", "StreamHellos", "CollectHellos", "Chat")


async def test_znode_at_the_exact_path_with_instance_json_gone_after_stop(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str
) -> None:
    before = time.time()
    server = greeter_server(zookeeper.url, tenant)
    async with server:
        path = instance_path(tenant, server.port)
        data, stat = await asyncio.to_thread(kazoo.get, path)
        assert stat.ephemeralOwner == zk_registry(server).session_id
        instance = Instance.from_json(data)
        assert instance.address == f"127.0.0.1:{server.port}"
        assert (instance.version, instance.weight, instance.group) == ("1.0.0", 100, "normal")
        assert dict(instance.tags) == {"zone": "hz"}
        assert dict(instance.services) == {"demo.Greeter": GREETER_METHODS}
        assert instance.pid == os.getpid()
        assert before <= instance.start_time <= time.time()
        assert instance.tls is False
    assert await asyncio.to_thread(kazoo.exists, path) is None


async def test_after_a_forced_session_expiry_the_node_belongs_to_the_new_session(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, figures: list[str]
) -> None:
    async with greeter_server(zookeeper.url, tenant) as server:
        registry = zk_registry(server)
        path = instance_path(tenant, server.port)
        old_session = registry.session_id
        await asyncio.to_thread(expire_session, zookeeper.hosts, registry.client)

        async def owned_by_new_session() -> bool:
            stat = await asyncio.to_thread(kazoo.exists, path)
            session = registry.session_id
            return (
                stat is not None and session not in (None, old_session)
                and stat.ephemeralOwner == session
            )  # fmt: skip

        took = await wait_until(owned_by_new_session, 20, "re-registration after expiry")
        figures.append(f"re-registered under a new session {took:.2f}s after the forced expiry")


async def test_a_stale_node_of_another_session_is_replaced(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str
) -> None:
    port = free_port()
    path = instance_path(tenant, port)
    # An old incarnation's session that ZooKeeper has not expired yet still holds the path.
    old_incarnation = KazooClient(hosts=zookeeper.hosts)
    await asyncio.to_thread(old_incarnation.start, 10)
    try:
        await asyncio.to_thread(
            old_incarnation.create, path, b"stale", ephemeral=True, makepath=True
        )
        async with greeter_server(zookeeper.url, tenant, port=port) as server:
            data, stat = await asyncio.to_thread(kazoo.get, path)
            assert stat.ephemeralOwner == zk_registry(server).session_id
            assert Instance.from_json(data).port == port
    finally:
        await asyncio.to_thread(old_incarnation.stop)
        old_incarnation.close()
