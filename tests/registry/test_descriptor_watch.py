"""Watching every descriptor of a tenant (what the gateway serves from): each change heard
at the cost of reading what changed, the last view kept while ZooKeeper is away."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.security import make_digest_acl

from csf.config import StaticURL, parse_registry_url
from csf.registry import StaticRegistry, ZooKeeperRegistry
from csf.registry import zookeeper as zookeeper_module
from csf.registry.admin import RegistryAdmin
from csf.registry.descriptors import export, parse
from csf.registry.lifecycle import LifecycleFormatError, descriptor_path, parse_status
from csf.registry.paths import tenant_path
from csf.testing.zookeeper import LocalZooKeeper
from tests.conftest import wait_until

View = Mapping[tuple[str, str], bytes]
GREETER = "demo.Greeter"


class Operator:
    """csf-registry's import and lifecycle commands, as an operator runs them (blocking,
    so run off the loop)."""

    def __init__(self, zookeeper: LocalZooKeeper, tenant: str) -> None:
        self.url = parse_registry_url(zookeeper.url)
        self.tenant = tenant

    def _import(self, codes: tuple[str, ...]) -> None:
        [entry] = export(["demo.providers"])["services"]
        document = {"schema": 1, "services": [{**entry, "service": code} for code in codes]}
        with RegistryAdmin(self.url, self.tenant) as admin:  # type: ignore[arg-type]
            admin.import_descriptors(parse(document))

    def _transition(self, code: str, action: str) -> None:
        with RegistryAdmin(self.url, self.tenant) as admin:  # type: ignore[arg-type]
            admin.transition(code, action)

    async def import_codes(self, *codes: str) -> None:
        """Import demo.providers' descriptor (demo.Greeter) as each service code's."""
        await asyncio.to_thread(self._import, codes)

    async def transition(self, code: str, action: str) -> None:
        await asyncio.to_thread(self._transition, code, action)


class Heard:
    """Every view the watch delivered, in order."""

    def __init__(self) -> None:
        self.views: list[dict[tuple[str, str], bytes]] = []

    def __call__(self, view: View) -> None:
        self.views.append(dict(view))

    @property
    def last(self) -> dict[tuple[str, str], bytes]:
        return self.views[-1] if self.views else {}

    def statuses(self) -> dict[tuple[str, str], str | None]:
        """The status in each descriptor of the last view (None: no status there)."""
        return {key: status_of(data) for key, data in self.last.items()}


def status_of(data: bytes) -> str | None:
    try:
        return parse_status(data)
    except LifecycleFormatError:
        return None


class Reads:
    """Counts the reads a registry's kazoo client sends, by kind and path."""

    KINDS = ("get_async", "get_children_async", "exists_async", "get_acls_async")

    def __init__(self, registry: ZooKeeperRegistry) -> None:
        self.log: list[tuple[str, str]] = []
        for kind in self.KINDS:
            setattr(registry.client, kind, self._counted(kind, getattr(registry.client, kind)))

    def _counted(self, kind: str, read: Callable[..., Any]) -> Callable[..., Any]:
        def counted(path: str, *args: Any, **kwargs: Any) -> Any:
            self.log.append((kind, path))
            return read(path, *args, **kwargs)

        return counted


async def started(zookeeper: LocalZooKeeper) -> ZooKeeperRegistry:
    registry = ZooKeeperRegistry(parse_registry_url(zookeeper.url))  # type: ignore[arg-type]
    await registry.start()
    return registry


@pytest.fixture
async def registry(zookeeper: LocalZooKeeper) -> AsyncIterator[ZooKeeperRegistry]:
    registry = await started(zookeeper)
    yield registry
    await registry.close()


async def test_the_first_view_holds_what_was_imported_and_skips_csf_s_own_nodes(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, registry: ZooKeeperRegistry
) -> None:
    await Operator(zookeeper, tenant).import_codes("XIESR", "ORDERS")
    own = f"{tenant_path(tenant)}/_sets/services/{GREETER}"
    await asyncio.to_thread(kazoo.create, own, b"{}", makepath=True)
    heard = Heard()
    registry.subscribe_descriptors(tenant, heard)
    await wait_until(lambda: bool(heard.views), 10, "the first view")
    assert heard.statuses() == {("XIESR", GREETER): "registered", ("ORDERS", GREETER): "registered"}
    stored, _ = await asyncio.to_thread(kazoo.get, descriptor_path(tenant, "XIESR", GREETER))
    assert heard.last[("XIESR", GREETER)] == stored


async def test_a_tenant_with_nothing_imported_is_an_empty_view_until_an_import(
    zookeeper: LocalZooKeeper, tenant: str, registry: ZooKeeperRegistry
) -> None:
    heard = Heard()
    registry.subscribe_descriptors(tenant, heard)
    await wait_until(lambda: heard.views == [{}], 10, "an empty view")
    await Operator(zookeeper, tenant).import_codes("XIESR")
    await wait_until(lambda: ("XIESR", GREETER) in heard.last, 10, "the import")


async def test_each_status_change_is_heard_and_nothing_else_is_delivered(
    zookeeper: LocalZooKeeper,
    kazoo: KazooClient,
    tenant: str,
    registry: ZooKeeperRegistry,
    figures: list[str],
) -> None:
    operator = Operator(zookeeper, tenant)
    await operator.import_codes("XIESR")
    await operator.transition("XIESR", "online")
    heard = Heard()
    registry.subscribe_descriptors(tenant, heard)
    await wait_until(lambda: heard.statuses() == {("XIESR", GREETER): "online"}, 10, "online")
    # A code without descriptors changes the tenant's children, not the view.
    await asyncio.to_thread(kazoo.create, f"{tenant_path(tenant)}/EMPTY", b"")
    began = time.monotonic()
    await operator.transition("XIESR", "open")
    await wait_until(lambda: heard.statuses() == {("XIESR", GREETER): "open"}, 10, "open")
    took = time.monotonic() - began
    figures.append(f"descriptor watch: `open` heard {took * 1000:.0f} ms after the command began")
    assert [parse_status(v[("XIESR", GREETER)]) for v in heard.views] == ["online", "open"]


async def test_a_code_imported_later_appears_and_a_deleted_descriptor_disappears(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, registry: ZooKeeperRegistry
) -> None:
    operator = Operator(zookeeper, tenant)
    await operator.import_codes("XIESR")
    heard = Heard()
    registry.subscribe_descriptors(tenant, heard)
    await wait_until(lambda: set(heard.last) == {("XIESR", GREETER)}, 10, "XIESR")
    await operator.import_codes("ORDERS")
    both = {("XIESR", GREETER), ("ORDERS", GREETER)}
    await wait_until(lambda: set(heard.last) == both, 10, "ORDERS as well")
    await asyncio.to_thread(kazoo.delete, descriptor_path(tenant, "XIESR", GREETER))
    await wait_until(lambda: set(heard.last) == {("ORDERS", GREETER)}, 10, "XIESR gone")
    await asyncio.to_thread(kazoo.delete, f"{tenant_path(tenant)}/ORDERS", recursive=True)
    await wait_until(lambda: heard.last == {}, 10, "ORDERS gone with its code")


async def test_garbage_in_a_descriptor_is_delivered_as_bytes_and_the_watch_goes_on(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, registry: ZooKeeperRegistry
) -> None:
    operator = Operator(zookeeper, tenant)
    await operator.import_codes("XIESR")
    heard = Heard()
    registry.subscribe_descriptors(tenant, heard)
    await wait_until(lambda: bool(heard.views), 10, "the first view")
    path = descriptor_path(tenant, "XIESR", GREETER)
    for garbage in (b"\xff{not json", b"", b"[" * 100_000):
        await asyncio.to_thread(kazoo.set, path, garbage)
        await wait_until(lambda: heard.last == {("XIESR", GREETER): garbage}, 10, repr(garbage))  # noqa: B023
    await operator.import_codes("XIESR")
    await wait_until(lambda: heard.statuses() == {("XIESR", GREETER): "registered"}, 10, "good")


async def test_a_descriptor_zookeeper_refuses_to_read_is_left_out_alone_and_told_once(
    zookeeper: LocalZooKeeper,
    kazoo: KazooClient,
    tenant: str,
    registry: ZooKeeperRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="csf.registry")
    operator = Operator(zookeeper, tenant)
    await operator.import_codes("XIESR", "ORDERS")
    hidden = descriptor_path(tenant, "XIESR", "demo.Hidden")
    foreign = [make_digest_acl("someone-else", "secret", all=True)]
    await asyncio.to_thread(kazoo.create, hidden, b"{}", acl=foreign)
    heard = Heard()
    registry.subscribe_descriptors(tenant, heard)
    both = {("XIESR", GREETER), ("ORDERS", GREETER)}
    await wait_until(lambda: set(heard.last) == both, 10, "the readable descriptors")
    await operator.transition("ORDERS", "online")
    await wait_until(lambda: heard.statuses()[("ORDERS", GREETER)] == "online", 10, "online")
    told = [r.getMessage() for r in caplog.records if "cannot read descriptor" in r.getMessage()]
    assert len(told) == 1 and hidden in told[0]
    await asyncio.to_thread(kazoo.delete, hidden)
    await asyncio.to_thread(kazoo.create, hidden, b"readable")
    await wait_until(lambda: heard.last.get(("XIESR", "demo.Hidden")) == b"readable", 10, "it")


async def test_a_change_reads_only_the_node_it_changed(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, registry: ZooKeeperRegistry
) -> None:
    codes = [f"S{n:02}" for n in range(40)]
    operator = Operator(zookeeper, tenant)
    await operator.import_codes(*codes)
    heard = Heard()
    registry.subscribe_descriptors(tenant, heard)
    await wait_until(lambda: len(heard.last) == 40, 10, "40 descriptors")
    reads = Reads(registry)

    path = descriptor_path(tenant, "S07", GREETER)
    await asyncio.to_thread(kazoo.set, path, b"changed")
    await wait_until(lambda: heard.last[("S07", GREETER)] == b"changed", 10, "the change")
    assert reads.log == [("get_async", path)]

    reads.log.clear()
    added = descriptor_path(tenant, "S11", "demo.Other")
    await asyncio.to_thread(kazoo.create, added, b"added")
    await wait_until(lambda: len(heard.last) == 41, 10, "the added descriptor")
    assert reads.log == [("get_children_async", added.rsplit("/", 1)[0]), ("get_async", added)]


async def test_zookeeper_restarted_keeps_the_view_and_reads_only_what_moved(
    own_zookeeper: LocalZooKeeper, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(zookeeper_module, "RELIST_JITTER", 0.0)
    operator = Operator(own_zookeeper, "T")
    await operator.import_codes("XIESR", "ORDERS")
    registry = await started(own_zookeeper)
    try:
        heard = Heard()
        registry.subscribe_descriptors("T", heard)
        await wait_until(lambda: len(heard.last) == 2, 10, "both descriptors")
        reads = Reads(registry)
        await own_zookeeper.astop()
        await own_zookeeper.astart()
        await operator.transition("ORDERS", "online")
        expected = {("XIESR", GREETER): "registered", ("ORDERS", GREETER): "online"}
        await wait_until(lambda: heard.statuses() == expected, 20, "the change after the restart")
        assert len(heard.views) == 2, "nothing delivered while ZooKeeper was away"
        gets = [path for kind, path in reads.log if kind == "get_async"]
        assert gets == [descriptor_path("T", "ORDERS", GREETER)], "XIESR's bytes not read again"
    finally:
        await registry.close()


async def test_past_the_bound_descriptors_held_already_stay_and_the_rest_are_told_once(
    zookeeper: LocalZooKeeper,
    kazoo: KazooClient,
    tenant: str,
    registry: ZooKeeperRegistry,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(zookeeper_module, "MAX_DESCRIPTORS", 3)
    caplog.set_level(logging.WARNING, logger="csf.registry")
    operator = Operator(zookeeper, tenant)
    await operator.import_codes("B", "C", "D", "E")
    heard = Heard()
    registry.subscribe_descriptors(tenant, heard)
    kept = {("B", GREETER), ("C", GREETER), ("D", GREETER)}
    await wait_until(lambda: set(heard.last) == kept, 10, "the first three by path")
    await operator.import_codes("A")  # first by path, but new: it displaces none
    await operator.transition("B", "online")
    await wait_until(lambda: heard.statuses()[("B", GREETER)] == "online", 10, "B online")
    assert set(heard.last) == kept
    told = [r for r in caplog.records if "a watch keeps" in r.getMessage()]
    assert len(told) == 1 and "holds 4 descriptors" in told[0].getMessage()
    await asyncio.to_thread(kazoo.delete, f"{tenant_path(tenant)}/B", recursive=True)
    await asyncio.to_thread(kazoo.delete, f"{tenant_path(tenant)}/C", recursive=True)
    after = {("A", GREETER), ("D", GREETER), ("E", GREETER)}
    await wait_until(lambda: set(heard.last) == after, 10, "back under the bound: all held")


async def test_a_cancelled_watch_hears_nothing_more(
    zookeeper: LocalZooKeeper, tenant: str, registry: ZooKeeperRegistry
) -> None:
    operator = Operator(zookeeper, tenant)
    cancelled, live = Heard(), Heard()
    subscription = registry.subscribe_descriptors(tenant, cancelled)
    registry.subscribe_descriptors(tenant, live)
    await wait_until(lambda: bool(cancelled.views and live.views), 10, "the first views")
    await subscription.cancel()
    await operator.import_codes("XIESR")
    await wait_until(lambda: bool(live.last), 10, "the import")
    assert cancelled.views == [{}]


async def test_the_static_registry_delivers_no_descriptors_once() -> None:
    registry = StaticRegistry(StaticURL((("127.0.0.1", 1),)))
    heard = Heard()
    registry.subscribe_descriptors("T", heard)
    await wait_until(lambda: heard.views == [{}], 5, "an empty view")
