"""After a reconnection every provider watch re-lists once, each after a random part of
RELIST_JITTER (so that a fleet reconnecting together is spread out), and what changed
while the connection was down is in that one re-list. The first connection and ordinary
watch events are not delayed."""

import asyncio
import random
import time
from collections.abc import Sequence

import pytest
from kazoo.client import KazooClient

from csf.config import ZooKeeperURL, parse_registry_url
from csf.registry import Instance, ServiceKey, ZooKeeperRegistry
from csf.registry import zookeeper as zookeeper_module
from csf.registry.paths import instance_path
from csf.testing.zookeeper import LocalZooKeeper
from tests.conftest import wait_until
from tests.faultproxy import FaultProxy

JITTER = 0.8  # seconds: unlike any back-off window, so its draws are told apart


class Recorder:
    def __init__(self) -> None:
        self.deliveries: list[tuple[float, frozenset[str]]] = []

    @property
    def view(self) -> frozenset[str]:
        return self.deliveries[-1][1] if self.deliveries else frozenset()

    def on_providers(self, instances: Sequence[Instance]) -> None:
        self.deliveries.append((time.monotonic(), frozenset(i.address for i in instances)))

    def on_unavailable(self) -> None:
        raise AssertionError("ZooKeeper is up")


class DrawsTheLongestDelay:
    """random for the module under test: every re-list delay is the longest allowed."""

    def __init__(self) -> None:
        self.relist_draws: list[tuple[float, float]] = []

    def uniform(self, low: float, high: float) -> float:
        if (low, high) == (0, JITTER):
            self.relist_draws.append((low, high))
            return high
        return random.uniform(low, high)


async def test_a_reconnection_relists_each_watch_once_after_its_jitter_and_sees_the_outage(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    draws = DrawsTheLongestDelay()
    monkeypatch.setattr(zookeeper_module, "random", draws)
    monkeypatch.setattr(zookeeper_module, "RELIST_JITTER", JITTER)
    services = ("JitterA", "JitterB")

    def plant(service: str, port: int) -> None:
        instance = Instance(host="127.0.0.1", port=port, start_time=time.time())
        path = instance_path(tenant, service, "defaultCluster", "normal", instance.address)
        kazoo.create(path, instance.to_json(), makepath=True)

    def unplant(service: str, port: int) -> None:
        kazoo.delete(
            instance_path(tenant, service, "defaultCluster", "normal", f"127.0.0.1:{port}")
        )

    for service in services:
        await asyncio.to_thread(plant, service, 1)
    proxy = FaultProxy("127.0.0.1", zookeeper.port)
    await proxy.start()
    url = parse_registry_url(f"zk://{proxy.address}")
    assert isinstance(url, ZooKeeperURL)
    registry = ZooKeeperRegistry(url)
    connections: list[float] = []
    on_state = registry._on_state

    def record_state(state: str) -> None:
        if state == "CONNECTED":
            connections.append(time.monotonic())
        on_state(state)

    monkeypatch.setattr(registry, "_on_state", record_state)
    await registry.start()
    # Subscribed before the first connection, which then finds the watches waiting.
    recorders = {service: Recorder() for service in services}
    subscriptions = [
        registry.subscribe(ServiceKey(tenant, service, "defaultCluster"), recorders[service])
        for service in services
    ]
    try:
        first = frozenset({"127.0.0.1:1"})
        await wait_until(lambda: all(r.view == first for r in recorders.values()), 10, "listed")
        await asyncio.to_thread(plant, "JitterA", 2)
        await wait_until(lambda: "127.0.0.1:2" in recorders["JitterA"].view, 10, "a live change")
        assert draws.relist_draws == [], "the first connection and watch events are not delayed"

        proxy.reset()
        await wait_until(lambda: not registry._connected.is_set(), 10, "the connection lost")
        await asyncio.to_thread(plant, "JitterA", 3)
        await asyncio.to_thread(unplant, "JitterB", 1)
        before = {service: len(r.deliveries) for service, r in recorders.items()}
        proxy.heal()

        expected = {
            "JitterA": frozenset({"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}),
            "JitterB": frozenset(),
        }
        await wait_until(
            lambda: all(recorders[s].view == expected[s] for s in services), 20, "the re-lists"
        )
        reconnected = connections[-1]
        assert len(connections) == 2
        assert draws.relist_draws == [(0, JITTER)] * len(services), "one draw per watch"
        for service, recorder in recorders.items():
            after = recorder.deliveries[before[service] :]
            assert [view for _, view in after] == [expected[service]], "one re-list, complete"
            assert after[0][0] - reconnected >= JITTER, f"{service} re-listed before its delay"

        await asyncio.to_thread(plant, "JitterB", 4)
        await wait_until(lambda: recorders["JitterB"].view == {"127.0.0.1:4"}, 10, "live again")
        assert len(draws.relist_draws) == len(services), "events after the re-list not delayed"
    finally:
        for subscription in subscriptions:
            await subscription.cancel()
        await registry.close()
        await proxy.close()
