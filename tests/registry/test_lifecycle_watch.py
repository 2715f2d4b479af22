"""Watching a gRPC service's lifecycle status: each change heard, None when the descriptor
is gone, and unreadable data ignored in favour of the last good status."""

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kazoo.client import KazooClient

from csf.config import parse_registry_url
from csf.registry import ZooKeeperRegistry
from csf.registry.admin import LIFECYCLE, RegistryAdmin
from csf.registry.descriptors import export, parse
from csf.registry.lifecycle import (
    STATUSES,
    LifecycleFormatError,
    descriptor_path,
    parse_status,
)
from csf.testing.zookeeper import LocalZooKeeper
from tests.conftest import wait_until


def test_the_statuses_are_those_the_lifecycle_commands_lead_to() -> None:
    assert {"registered"} | {target for _, target in LIFECYCLE.values()} == STATUSES
    assert parse_status(b'{"schema": 1, "status": "open"}') == "open"
    for data in (b"not json", b"[]", b"{}", b'{"status": "opened"}', b'{"status": 1}'):
        with pytest.raises(LifecycleFormatError):
            parse_status(data)


class Operator:
    """csf-registry's admin calls, as an operator runs them (blocking: off the loop)."""

    def __init__(self, zookeeper: LocalZooKeeper, tenant: str) -> None:
        self.url = parse_registry_url(zookeeper.url)
        self.tenant = tenant

    def _import(self) -> None:
        with RegistryAdmin(self.url, self.tenant) as admin:  # type: ignore[arg-type]
            admin.import_descriptors(parse(export(["demo.providers"])))

    def _transition(self, action: str) -> None:
        with RegistryAdmin(self.url, self.tenant) as admin:  # type: ignore[arg-type]
            admin.transition("XIESR", action)

    async def import_descriptors(self) -> None:
        await asyncio.to_thread(self._import)

    async def transition(self, action: str) -> None:
        await asyncio.to_thread(self._transition, action)


@pytest.fixture
async def registry(zookeeper: LocalZooKeeper) -> AsyncIterator[ZooKeeperRegistry]:
    registry = ZooKeeperRegistry(parse_registry_url(zookeeper.url))  # type: ignore[arg-type]
    await registry.start()
    yield registry
    await registry.close()


async def test_each_status_is_heard_and_none_while_there_is_no_descriptor(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, registry: ZooKeeperRegistry
) -> None:
    heard: list[str | None] = []
    registry.subscribe_lifecycle(tenant, "XIESR", "demo.Greeter", heard.append)
    await wait_until(lambda: heard == [None], 10, "None: nothing imported yet")
    operator = Operator(zookeeper, tenant)
    await operator.import_descriptors()
    await wait_until(lambda: heard[-1] == "registered", 10, "registered")
    for action in ("online", "open", "close", "offline", "deregister"):
        await operator.transition(action)
        status = LIFECYCLE[action][1]
        await wait_until(lambda: heard[-1] == status, 10, status)  # noqa: B023
    path = descriptor_path(tenant, "XIESR", "demo.Greeter")
    await asyncio.to_thread(kazoo.delete, path)
    await wait_until(lambda: heard[-1] is None, 10, "None once the descriptor is deleted")
    assert heard[0] is None and None not in heard[1:-1]


async def test_unreadable_descriptor_data_keeps_the_last_good_status(
    zookeeper: LocalZooKeeper,
    kazoo: KazooClient,
    tenant: str,
    registry: ZooKeeperRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="csf.registry")
    operator = Operator(zookeeper, tenant)
    await operator.import_descriptors()
    await operator.transition("online")
    heard: list[str | None] = []
    registry.subscribe_lifecycle(tenant, "XIESR", "demo.Greeter", heard.append)
    await wait_until(lambda: heard == ["online"], 10, "online")
    path = descriptor_path(tenant, "XIESR", "demo.Greeter")
    document = json.loads((await asyncio.to_thread(kazoo.get, path))[0])

    def ignored() -> int:
        return sum("last good status kept" in r.getMessage() for r in caplog.records)

    for garbage in (b"{not json", json.dumps({**document, "status": "opened"}).encode()):
        warned = ignored()
        await asyncio.to_thread(kazoo.set, path, garbage)
        await wait_until(lambda: ignored() > warned, 10, "the warning")  # noqa: B023
    assert heard == ["online"]
    # The watch is still set: the next good document is heard.
    await asyncio.to_thread(kazoo.set, path, json.dumps({**document, "status": "open"}).encode())
    await wait_until(lambda: heard == ["online", "open"], 10, "open")


@given(st.binary(max_size=256) | st.builds(lambda n: b"[" * n, st.integers(0, 200_000)))
def test_any_descriptor_data_gives_a_status_or_the_parser_s_own_error(data: bytes) -> None:
    try:
        status = parse_status(data)
    except LifecycleFormatError:
        return
    assert status in STATUSES
