"""A directory's state stays bounded whatever the registry lists and the route rules say:
pools of old rules go, providers are capped, per-address state follows the listing, and
a copy of an address never takes a provider away (unit tests over a fake registry)."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from csf import directory as directory_module
from csf._invocation import Invocation, Selector
from csf.directory import Directory
from csf.endpoint import Endpoint
from csf.lb._random import RandomPicker
from csf.registry import Instance, ServiceKey
from csf.registry.snapshot import SnapshotStore
from csf.router import RouterFilter
from csf.rules import RouteRule
from tests.conftest import wait_until

KEY = ServiceKey("TenantA", "XIESR", "defaultCluster")


class FakeRegistry:
    """Hands the test the directory's listener; subscribing does nothing else."""

    def subscribe(self, key: ServiceKey, listener: Any) -> FakeRegistry:
        return self

    async def cancel(self) -> None:
        return None


@dataclass
class FakeRules:
    """ServiceRules' interface for a directory and a router; `push` changes the route."""

    rules: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    weight: Any = None

    def get(self, kind: Any) -> Any:
        return self.rules.get(kind.KIND)

    def version(self, kind: str) -> int:
        return self.versions.get(kind, 0)

    def on_change(self, kind: str, listener: Callable[[], None]) -> Callable[[], None]:
        return lambda: None

    def push(self, rule: RouteRule) -> None:
        self.rules["route"] = rule
        self.versions["route"] = self.version("route") + 1


@dataclass
class Context:
    """The part of a MethodContext the router reads."""

    directory: Directory
    rules: FakeRules
    balancer: Any
    method_name: str = "SayHello"
    selector: Selector = field(default_factory=Selector)


class Pickers:
    """A balancer that remembers which of its pickers are still open."""

    def __init__(self) -> None:
        self.open: set[Tracked] = set()

    def __call__(self, endpoints: Sequence[Endpoint]) -> Tracked:
        picker = Tracked(endpoints, self.open)
        self.open.add(picker)
        return picker


class Tracked:
    def __init__(self, endpoints: Sequence[Endpoint], open: set[Tracked]) -> None:
        self.endpoints = tuple(endpoints)
        self._open = open

    def pick(self, inv: Invocation) -> Endpoint | None:
        return self.endpoints[0] if self.endpoints else None

    def close(self) -> None:
        self._open.discard(self)


def instance(port: int, group: str = "normal", tls: bool = False) -> Instance:
    return Instance(host="127.0.0.1", port=port, group=group, tls=tls)


@pytest.fixture
async def directory() -> AsyncIterator[Directory]:
    found = Directory(KEY, FakeRegistry(), None, FakeRules())  # type: ignore[arg-type]
    yield found
    await found.close()


async def call(router: RouterFilter) -> None:
    async def terminal(inv: Invocation) -> None:
        return None

    inv = Invocation("XIESR", "/x/SayHello", None, None, time.monotonic() + 1)
    await router(inv, terminal)


async def test_the_pools_of_old_route_rules_are_dropped_and_their_pickers_closed() -> None:
    rules = FakeRules()
    directory = Directory(KEY, FakeRegistry(), None, rules)  # type: ignore[arg-type]
    directory.on_providers([instance(port, f"g{port % 4}") for port in range(1, 9)])
    pickers = Pickers()
    router = RouterFilter(Context(directory, rules, pickers))  # type: ignore[arg-type]
    for version in range(50):
        rules.push(RouteRule(group_weights={f"g{version % 4}": 1, f"new{version}": 1}))
        await call(router)
    gc.collect()
    directory.on_providers([instance(port, f"g{port % 4}") for port in range(1, 10)])
    # The router's own pool and the two of the last rule; every other picker closed.
    assert len(directory._pools) == 3
    assert len(pickers.open) == 3
    await directory.close()


async def test_a_pool_stays_current_while_a_call_still_holds_it(directory: Directory) -> None:
    directory.on_providers([instance(1)])
    pickers = Pickers()
    pool = directory.pool(pickers, Selector(group="normal"))
    gc.collect()
    directory.on_providers([instance(1), instance(2)])
    assert pool.picker is not None and len(pool.picker.endpoints) == 2


async def test_pools_of_many_groups_each_hold_their_own_group_s_providers(
    directory: Directory,
) -> None:
    directory.on_providers([instance(port, f"g{port}") for port in range(1, 1001)])
    pools = [directory.pool(RandomPicker, Selector(group=f"g{n}")) for n in range(1, 1001)]
    directory.on_providers([instance(port, f"g{port}") for port in range(1, 1002)])
    assert all(
        pool.picker is not None and [e.address for e in pool.picker.endpoints] == [f"127.0.0.1:{n}"]
        for n, pool in enumerate(pools, 1)
    )


async def test_addresses_left_out_for_their_transport_are_forgotten_once_unlisted(
    directory: Directory, caplog: pytest.LogCaptureFixture
) -> None:
    directory.on_providers([instance(1), *(instance(port, tls=True) for port in range(2, 12))])
    assert len(directory._refused) == 10
    assert caplog.text.count("leaving out") == 1 and "and 5 more: they speak TLS" in caplog.text
    directory.on_providers([instance(1), instance(2, tls=True)])
    assert directory._refused == {"127.0.0.1:2"}
    assert caplog.text.count("leaving out") == 1  # told once of each


@pytest.mark.parametrize("copy_first", [False, True])
async def test_a_copy_of_another_transport_never_displaces_a_matching_provider(
    directory: Directory, copy_first: bool
) -> None:
    real, copy = instance(1, "normal"), instance(1, "aaa", tls=True)
    directory.on_providers([copy, real] if copy_first else [real, copy])
    assert directory.endpoints["127.0.0.1:1"].instance == real
    assert not directory._refused  # the address is served: nothing to say was left out


async def test_a_copy_in_another_group_never_displaces_the_provider_kept(
    directory: Directory, caplog: pytest.LogCaptureFixture
) -> None:
    real = instance(1, "normal")
    directory.on_providers([real])
    for planted in ("aaa", "zzz"):
        directory.on_providers([real, instance(1, planted)])
        assert directory.endpoints["127.0.0.1:1"].instance == real
    assert directory.conflicting_copies == 2
    assert "leaving out the copy of 127.0.0.1:1 in group 'aaa'" in caplog.text


async def test_two_new_copies_of_an_address_keep_the_first_group_by_name(
    directory: Directory,
) -> None:
    directory.on_providers([instance(1, "normal"), instance(1, "gray")])
    assert directory.endpoints["127.0.0.1:1"].instance.group == "gray"


async def test_providers_past_the_cap_are_left_out_and_those_kept_stay(
    directory: Directory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(directory_module, "MAX_PROVIDERS", 3)
    directory.on_providers([instance(port) for port in (50, 60, 70)])
    flood = [instance(port) for port in range(1, 40)]
    directory.on_providers([*flood, instance(50), instance(60), instance(70)])
    directory.on_providers([*flood, instance(50), instance(60), instance(70)])
    assert set(directory.endpoints) == {"127.0.0.1:50", "127.0.0.1:60", "127.0.0.1:70"}
    assert directory.providers_over_cap == 39
    assert caplog.text.count("over the 3 a consumer keeps") == 1


async def test_an_unreadable_snapshot_is_logged_and_the_directory_waits_for_the_registry(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SnapshotStore(tmp_path)
    store.save(KEY, [instance(1)])
    saved = store.path(KEY).read_bytes()
    assert saved.count(b'"start_time": 0.0') == 1
    store.path(KEY).write_bytes(
        saved.replace(b'"start_time": 0.0', b'"start_time": 1' + b"0" * 400)
    )
    directory = Directory(KEY, FakeRegistry(), store, FakeRules())  # type: ignore[arg-type]
    directory.on_unavailable()
    await wait_until(lambda: not directory._tasks, 5, "the snapshot task")
    assert "ignoring snapshot" in caplog.text
    assert not directory.endpoints
    directory.on_providers([instance(2)])
    await asyncio.wait_for(directory.wait_listed(), 1)
    await directory.close()


async def test_a_snapshot_task_that_fails_logs_and_never_leaves_an_unretrieved_exception(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken:
        def load(self, key: ServiceKey) -> None:
            raise RuntimeError("a bug")

    lost: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: lost.append(context))
    directory = Directory(KEY, FakeRegistry(), Broken(), FakeRules())  # type: ignore[arg-type]
    directory.on_unavailable()
    await wait_until(lambda: not directory._tasks, 5, "the snapshot task")
    gc.collect()
    assert not lost
    assert "could not read the snapshot" in caplog.text
    with caplog.at_level(logging.ERROR):
        await directory.close()
