"""The ZooKeeper provider watch against a real ZooKeeper: groups and instances that come,
change and go are all seen, whichever node the event fired on."""

import asyncio
import time
from collections.abc import Sequence

from kazoo.client import KazooClient

from csf.config import ZooKeeperURL, parse_registry_url
from csf.registry import Instance, ServiceKey, ZooKeeperRegistry
from csf.registry.paths import cluster_path
from csf.testing.zookeeper import LocalZooKeeper
from tests.conftest import wait_until


class Recorder:
    def __init__(self) -> None:
        self.view: dict[str, int] = {}
        self.deliveries = 0

    def on_providers(self, instances: Sequence[Instance]) -> None:
        self.view = {f"{i.group}/{i.address}": i.weight for i in instances}
        self.deliveries += 1

    def on_unavailable(self) -> None:
        raise AssertionError("ZooKeeper is up")


async def test_groups_and_instances_are_followed_through_every_kind_of_change(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str
) -> None:
    url = parse_registry_url(zookeeper.url)
    assert isinstance(url, ZooKeeperURL)
    registry = ZooKeeperRegistry(url)
    await registry.start()
    recorder = Recorder()
    root = cluster_path(tenant, "XIESR", "defaultCluster")

    def plant(group: str, port: int, weight: int = 100) -> None:
        instance = Instance(
            host="127.0.0.1", port=port, group=group, weight=weight, start_time=time.time()
        )
        kazoo.create(f"{root}/{group}/{instance.address}", instance.to_json(), makepath=True)

    async def expect(view: dict[str, int], what: str) -> None:
        await wait_until(lambda: recorder.view == view, 10, what)

    subscription = registry.subscribe(ServiceKey(tenant, "XIESR", "defaultCluster"), recorder)
    try:
        await wait_until(lambda: recorder.deliveries >= 1, 10, "the first (empty) listing")
        assert recorder.view == {}

        await asyncio.to_thread(plant, "normal", 1)
        await expect({"normal/127.0.0.1:1": 100}, "the cluster node created with a group")
        await asyncio.to_thread(plant, "gray", 2)
        await expect({"normal/127.0.0.1:1": 100, "gray/127.0.0.1:2": 100}, "a new group")
        await asyncio.to_thread(plant, "normal", 3)
        await expect(
            {"normal/127.0.0.1:1": 100, "normal/127.0.0.1:3": 100, "gray/127.0.0.1:2": 100},
            "an instance joining a known group",
        )

        heavier = Instance(host="127.0.0.1", port=3, weight=7, start_time=time.time())
        await asyncio.to_thread(kazoo.set, f"{root}/normal/127.0.0.1:3", heavier.to_json())
        await expect(
            {"normal/127.0.0.1:1": 100, "normal/127.0.0.1:3": 7, "gray/127.0.0.1:2": 100},
            "an instance's data changed",
        )

        await asyncio.to_thread(kazoo.delete, f"{root}/gray", recursive=True)
        await expect({"normal/127.0.0.1:1": 100, "normal/127.0.0.1:3": 7}, "a whole group deleted")
        await asyncio.to_thread(plant, "gray", 4)
        await expect(
            {"normal/127.0.0.1:1": 100, "normal/127.0.0.1:3": 7, "gray/127.0.0.1:4": 100},
            "the group created again",
        )
        await asyncio.to_thread(kazoo.delete, f"{root}/normal/127.0.0.1:1")
        await expect({"normal/127.0.0.1:3": 7, "gray/127.0.0.1:4": 100}, "an instance leaving")
    finally:
        await subscription.cancel()
        await registry.close()
