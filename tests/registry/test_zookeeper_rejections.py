"""What the ZooKeeper registry refuses, against a real ZooKeeper: a CSF bug met while
reading a node is told once with its traceback; a node ZooKeeper would not let it read
is used once its ACL is opened, without waiting for a reconnection; and a deregistration
in flight keeps a new registration of the same path waiting, so the node is not lost."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.security import OPEN_ACL_UNSAFE, make_digest_acl

from csf.config import ZooKeeperURL, parse_registry_url
from csf.registry import Instance, Registration, ServiceKey, ZooKeeperRegistry
from csf.registry.paths import cluster_path
from csf.registry.rejections import Rejections
from csf.testing.zookeeper import LocalZooKeeper
from tests.conftest import wait_until

STRANGER = "mallory:not-the-tenant"
THEIRS = [make_digest_acl(*STRANGER.split(":"), all=True)]


class Recorder:
    def __init__(self) -> None:
        self.ports: set[int] = set()
        self.deliveries = 0

    def on_providers(self, instances: Sequence[Instance]) -> None:
        self.ports = {instance.port for instance in instances}
        self.deliveries += 1

    def on_unavailable(self) -> None:
        raise AssertionError("ZooKeeper is up")


def zk_url(url: str) -> ZooKeeperURL:
    parsed = parse_registry_url(url)
    assert isinstance(parsed, ZooKeeperURL)
    return parsed


def instance_node(tenant: str, port: int) -> tuple[str, bytes]:
    instance = Instance(host="127.0.0.1", port=port, start_time=time.time())
    root = cluster_path(tenant, "XIESR", "defaultCluster")
    return f"{root}/normal/{instance.address}", instance.to_json()


class FakeCounter:
    def __init__(self) -> None:
        self.added: list[dict[str, str]] = []

    def add(self, amount: int, attributes: dict[str, str]) -> None:
        self.added.append(attributes)


def test_a_format_refusal_is_one_warning_and_a_bug_one_error_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="csf.registry")
    rejections = Rejections()
    first, second = FakeCounter(), FakeCounter()
    rejections.count_with(first)  # type: ignore[arg-type]
    # A second owner of a shared registry: the first one's meter counts.
    rejections.count_with(second)  # type: ignore[arg-type]
    rejections.refuse("rule", "format", "/a", b"x", "bad a")
    try:
        raise ZeroDivisionError("a CSF bug")
    except ZeroDivisionError as exc:
        bug = exc
    for _ in range(3):
        rejections.refuse("rule", "unexpected", "/b", b"y", "bad b", bug=bug)
    [warned, failed] = caplog.records
    assert (warned.levelno, warned.getMessage(), warned.exc_info) == (
        logging.WARNING,
        "bad a",
        None,
    )
    assert (failed.levelno, failed.getMessage()) == (logging.ERROR, "bad b")
    assert failed.exc_info is not None and failed.exc_info[1] is bug
    assert [a["csf.reason"] for a in first.added] == ["format", "unexpected"]
    assert second.added == []


async def test_a_bug_met_parsing_an_instance_is_told_once_with_its_traceback(
    zookeeper: LocalZooKeeper,
    kazoo: KazooClient,
    tenant: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.WARNING, logger="csf.registry")
    good_path, good = instance_node(tenant, 61201)
    odd_path, odd = instance_node(tenant, 61202)
    parse = Instance.from_json

    def buggy(data: bytes) -> Instance:
        if data == odd:
            raise ZeroDivisionError("a CSF bug")
        return parse(data)

    monkeypatch.setattr(Instance, "from_json", staticmethod(buggy))
    await asyncio.to_thread(kazoo.create, good_path, good, makepath=True)
    await asyncio.to_thread(kazoo.create, odd_path, odd)
    registry = ZooKeeperRegistry(zk_url(zookeeper.url))
    await registry.start()
    recorder = Recorder()
    subscription = registry.subscribe(ServiceKey(tenant, "XIESR", "defaultCluster"), recorder)
    try:
        await wait_until(lambda: recorder.ports == {61201}, 10, "the good one listed alone")
        # As after a reconnection, read everything again: still told once.
        for watch in registry._watches:
            watch.relist_all()
        deliveries = recorder.deliveries
        await wait_until(lambda: recorder.deliveries > deliveries, 10, "a second listing")
    finally:
        await subscription.cancel()
        await registry.close()
    [told] = [r for r in caplog.records if odd_path in r.getMessage()]
    assert told.levelno == logging.ERROR
    assert told.exc_info is not None and isinstance(told.exc_info[1], ZeroDivisionError)


@pytest.fixture
async def stranger(zookeeper: LocalZooKeeper) -> AsyncIterator[KazooClient]:
    """A client of another identity, whose nodes the tenant may not read."""
    client = KazooClient(hosts=zookeeper.hosts, auth_data=[("digest", STRANGER)])
    await asyncio.to_thread(client.start, 10)
    yield client
    await asyncio.to_thread(client.stop)
    await asyncio.to_thread(client.close)


@pytest.fixture
async def registry(zookeeper: LocalZooKeeper) -> AsyncIterator[ZooKeeperRegistry]:
    found = ZooKeeperRegistry(zk_url(zookeeper.url))
    yield found
    await found.close()


async def test_an_unreadable_instance_is_used_once_its_acl_is_opened(
    kazoo: KazooClient, stranger: KazooClient, registry: ZooKeeperRegistry, tenant: str
) -> None:
    good_path, good = instance_node(tenant, 61211)
    locked_path, locked = instance_node(tenant, 61212)
    await asyncio.to_thread(kazoo.create, good_path, good, makepath=True)
    await asyncio.to_thread(stranger.create, locked_path, locked, acl=THEIRS)
    await registry.start()
    recorder = Recorder()
    subscription = registry.subscribe(ServiceKey(tenant, "XIESR", "defaultCluster"), recorder)
    await wait_until(lambda: recorder.ports == {61211}, 10, "the readable one listed")
    await asyncio.to_thread(stranger.set_acls, locked_path, OPEN_ACL_UNSAFE)
    # No watch fires on an ACL change: the slow re-read finds it (first delays <= 1+2 s).
    await wait_until(lambda: recorder.ports == {61211, 61212}, 6, "the opened one used")
    await subscription.cancel()


async def test_a_registration_waits_for_a_deregistration_of_its_path_in_flight(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str
) -> None:
    registry = ZooKeeperRegistry(zk_url(zookeeper.url))
    await registry.start()
    registration = Registration(
        ServiceKey(tenant, "XIESR", "defaultCluster"), Instance(host="127.0.0.1", port=61221)
    )
    try:
        await registry.wait_connected()  # no re-registration on connecting runs beside
        await registry.register(registration)
        # Hold the deregistration after it has read the node, before it deletes it.
        gate, held = asyncio.Event(), asyncio.Event()
        real_call, real_get = registry.call, registry.client.get_async
        gated: list[Any] = []

        def get_async(path: str, watch: Any = None) -> Any:
            request = real_get(path, watch)
            if not gated and path not in registry._registrations:  # deregister's read
                gated.append(request)
            return request

        async def call(request: Any) -> Any:
            result = await real_call(request)
            if gated and request is gated[0]:
                held.set()
                await gate.wait()
            return result

        registry.client.get_async = get_async
        registry.call = call  # type: ignore[method-assign]
        deregistering = asyncio.create_task(registry.deregister(registration))
        await asyncio.wait_for(held.wait(), 10)
        registering = asyncio.create_task(registry.register(registration))
        # Give the registration the time to run beside the deregistration, if it may.
        await asyncio.wait([registering], timeout=0.5)
        gate.set()
        await asyncio.wait_for(deregistering, 10)
        await asyncio.wait_for(registering, 10)
        node = await asyncio.to_thread(kazoo.exists, registration.path)
        assert node is not None, "registered last, yet the node is gone"
        assert node.ephemeralOwner == registry.session_id
    finally:
        await registry.close()


async def test_a_group_node_it_may_not_list_stops_no_change_in_the_cluster(
    kazoo: KazooClient, stranger: KazooClient, registry: ZooKeeperRegistry, tenant: str
) -> None:
    """Another identity's node beside the real groups: the groups it may list are
    followed as before, and the group is used once its ACL is opened."""
    first_path, first = instance_node(tenant, 61231)
    second_path, second = instance_node(tenant, 61232)
    planted = first_path.rsplit("/", 2)[0] + "/planted"
    await asyncio.to_thread(kazoo.create, first_path, first, makepath=True)
    await asyncio.to_thread(stranger.create, planted, b"", acl=THEIRS)
    await registry.start()
    recorder = Recorder()
    subscription = registry.subscribe(ServiceKey(tenant, "XIESR", "defaultCluster"), recorder)
    await wait_until(lambda: recorder.ports == {61231}, 10, "the readable group listed")
    await asyncio.to_thread(kazoo.create, second_path, second)
    await wait_until(lambda: recorder.ports == {61231, 61232}, 5, "a new provider seen")
    await asyncio.to_thread(kazoo.delete, first_path)
    await wait_until(lambda: recorder.ports == {61232}, 5, "a provider gone seen")
    inside = Instance(host="127.0.0.1", port=61233, group="planted", start_time=time.time())
    await asyncio.to_thread(stranger.create, f"{planted}/{inside.address}", inside.to_json())
    await asyncio.to_thread(stranger.set_acls, planted, OPEN_ACL_UNSAFE)
    # No watch fires on an ACL change: the slow re-read finds it (first delays <= 1+2 s).
    await wait_until(lambda: recorder.ports == {61232, 61233}, 6, "the opened group used")
    await subscription.cancel()
