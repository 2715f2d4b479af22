"""Calls keep succeeding while ZooKeeper is away; the view converges when it returns."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from kazoo.client import KazooClient

import csf
from csf.registry import ServiceKey
from csf.registry.snapshot import SnapshotStore
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from tests.conftest import ProviderProcess, wait_until

StartProvider = Callable[..., Awaitable[ProviderProcess]]
SESSION_TIMEOUT = 2
CALL_INTERVAL = 0.005  # a bounded load of about 200 calls/s


def group_children(hosts: str, path: str) -> set[str]:
    client = KazooClient(hosts=hosts)
    client.start(timeout=10)
    try:
        return set(client.get_children(path)) if client.exists(path) else set()
    finally:
        client.stop()
        client.close()


@pytest.mark.parametrize("outage", [5, pytest.param(60, marks=pytest.mark.slow)])
async def test_zookeeper_stopped_while_calling_then_restarted(
    outage: float,
    own_zookeeper: LocalZooKeeper,
    tenant: str,
    tmp_path: Path,
    providers: StartProvider,
    figures: list[str],
) -> None:
    registry = f"{own_zookeeper.url}?session_timeout={SESSION_TIMEOUT}"
    started = [await providers(registry, tenant) for _ in range(2)]
    addresses = {provider.address for provider in started}
    group = f"/busidomain/csf/{tenant}/XIESR/clusters/defaultCluster/normal"
    async with csf.Consumer(
        registry=registry, tenant=tenant, app="test", snapshot_dir=tmp_path
    ) as consumer:
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=2)
        directory = consumer.directory("XIESR")
        await wait_until(lambda: set(directory.endpoints) == addresses, 10, "both providers")

        await own_zookeeper.astop()
        outage_end = time.monotonic() + outage
        served, failed = 0, 0
        while time.monotonic() < outage_end and served + failed < 400 * outage:
            try:
                await stub.SayHello(greeter_pb2.HelloRequest(name="x"))
                served += 1
            except Exception:
                failed += 1
            await asyncio.sleep(CALL_INTERVAL)
        figures.append(f"ZooKeeper down {outage}s: {served} calls served, {failed} failed")
        assert failed == 0 and served > 0
        assert set(directory.endpoints) == addresses

        await own_zookeeper.astart()
        took = await wait_until(
            lambda: _registered(own_zookeeper.hosts, group, addresses), 20, "re-registration"
        )
        await wait_until(lambda: set(directory.endpoints) == addresses, 10, "view converged")
        figures.append(
            f"ZooKeeper down {outage}s: every provider registered {took:.2f}s after it came back"
        )
        replies = {(await stub.SayHello(greeter_pb2.HelloRequest(name="y"))).served_by
                   for _ in range(4)}  # fmt: skip
        assert replies == addresses


async def _registered(hosts: str, group: str, addresses: set[str]) -> bool:
    return await asyncio.to_thread(group_children, hosts, group) == addresses


async def test_a_consumer_started_while_zookeeper_is_down_serves_from_its_snapshot(
    own_zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path, providers: StartProvider
) -> None:
    started = [await providers(own_zookeeper.url, tenant) for _ in range(2)]
    addresses = {provider.address for provider in started}
    snapshots = SnapshotStore(tmp_path)
    key = ServiceKey(tenant, "XIESR", "defaultCluster")

    def snapshot_lists_both() -> bool:
        saved = snapshots.load(key)
        return saved is not None and {instance.address for instance in saved} == addresses

    async with csf.Consumer(
        registry=own_zookeeper.url, tenant=tenant, app="test", snapshot_dir=tmp_path
    ) as first:
        first.directory("XIESR")
        await wait_until(snapshot_lists_both, 10, "the snapshot on disk")

    await own_zookeeper.astop()
    async with csf.Consumer(
        registry=own_zookeeper.url, tenant=tenant, app="test", snapshot_dir=tmp_path
    ) as second:
        stub = second.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=3)
        replies = {(await stub.SayHello(greeter_pb2.HelloRequest(name="x"))).served_by
                   for _ in range(4)}  # fmt: skip
        assert replies == addresses
        assert set(second.directory("XIESR").endpoints) == addresses
