"""A consumer's rules on disk (DESIGN section 8): its snapshot keeps the last good rules,
`set` included, and counts as the first reading when ZooKeeper is down; while ZooKeeper
is up its reading wins and replaces the snapshot.

The fake registry (RuleFeed) delivers only what the test pushes: a feed that pushes
nothing is a ZooKeeper that cannot be reached. The live tests stop a real one."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient

import csf
from csf.registry.snapshot import MAX_SNAPSHOT_AGE, SnapshotStore
from csf.rule_set import ServiceRules
from csf.rules import PARSERS, RouteRule, Rule, TimeoutRule, parse_rule
from csf.set_rule import SetRule
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2_grpc
from tests.conftest import push_rule, wait_until
from tests.resilience.fakes import RuleFeed
from tests.set_deployment import Deployment, deployed, say_hello

SERVICE = "XIESR"
SHORT_WAIT = 0.05  # the fake registry never answers: give up soon


def document(**fields: Any) -> bytes:
    return json.dumps({"schema": 1, **fields}).encode()


def set_rule(first: str, second: str) -> dict[str, Any]:
    """Keys 0..4 (bucket = key % 10) to SET `first`, 5..9 to `second`."""
    return {
        "schema": 1,
        "key": "x-user-id",
        "buckets": 10,
        "ranges": [{"from": 0, "to": 4, "set": first}, {"from": 5, "to": 9, "set": second}],
    }


SET_A = json.dumps(set_rule("hz.a.1", "hz.a.2")).encode()
SET_B = json.dumps(set_rule("hz.a.2", "hz.a.1")).encode()
TIMEOUT = document(timeout_ms=1500)
RETRY = document(retries=1)


def parsed(rules: dict[str, bytes]) -> dict[str, Rule]:
    return {kind: parse_rule(kind, data) for kind, data in rules.items()}


def saved(store: SnapshotStore, tenant: str = "T", service: str = "S") -> dict[str, Rule] | None:
    loaded = store.load_rules(tenant, service)
    return None if loaded is None else {kind: s.rule for kind, s in loaded.items()}


def in_force(rules: ServiceRules) -> dict[str, Rule]:
    return {kind: rule for kind, rule in rules.current.items() if rule is not None}


def give_all_but(feed: RuleFeed, *kinds: str) -> None:
    """ZooKeeper answers for every kind but `kinds`: no document there."""
    for kind in PARSERS:
        if kind not in kinds:
            feed.delete(kind)


# -- a fake registry: what the snapshot gives, and when ---------------------------------------


async def test_saved_rules_are_the_first_reading_of_the_kinds_zookeeper_has_not_given(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SnapshotStore(tmp_path)
    store.save_rules("T", "S", {"set": SET_A, "timeout": TIMEOUT, "retry": RETRY})
    feed = RuleFeed()
    rules = ServiceRules(feed, "T", "S", startup_wait=SHORT_WAIT, snapshots=store)  # type: ignore[arg-type]
    try:
        feed.push("timeout", timeout_ms=300)  # given by ZooKeeper before it went away
        await rules.settle(5.0)
        assert rules.ready
        assert in_force(rules) == parsed({"set": SET_A, "retry": RETRY}) | {
            "timeout": TimeoutRule(timeout_ms=300)
        }
        assert "starting from the saved retry, set rules" in caplog.text
        # ZooKeeper back: its readings replace the snapshot's; a deleted node, the defaults.
        feed.give("set", SET_B)
        feed.delete("retry")
        assert rules.get(SetRule) == parse_rule("set", SET_B)
        assert rules.current["retry"] is None
    finally:
        await rules.close()


async def test_without_a_snapshot_the_rules_give_up_to_the_defaults_as_before(
    tmp_path: Path,
) -> None:
    feed = RuleFeed()
    rules = ServiceRules(  # type: ignore[arg-type]
        feed, "T", "S", startup_wait=SHORT_WAIT, snapshots=SnapshotStore(tmp_path)
    )
    try:
        started = time.monotonic()
        await rules.settle(5.0)
        assert rules.ready and in_force(rules) == {}
        assert time.monotonic() - started < 4.5  # gave up after startup_wait, not `within` (5)
    finally:
        await rules.close()


def write_file(store: SnapshotStore, rules: dict[str, bytes], age: float = 1.0) -> None:
    document = {"schema": 1, "saved_at": time.time() - age, "rules": {}}
    document["rules"] = {kind: data.decode() for kind, data in rules.items()}
    store.rules_path("T", "S").write_text(json.dumps(document))


def write_corrupt(store: SnapshotStore) -> str:
    store.rules_path("T", "S").write_bytes(b'{"schema": 1, "saved_at": ')
    return "ignoring snapshot"


def write_old(store: SnapshotStore) -> str:
    write_file(store, {"set": SET_A, "timeout": TIMEOUT}, age=MAX_SNAPSHOT_AGE + 60)
    return "hours ago"


def write_unsafe(store: SnapshotStore) -> str:
    store.rules_path("T", "S").parent.chmod(0o777)  # anyone could plant rules there
    return "not reading snapshots from"


def write_invalid_set(store: SnapshotStore) -> str:
    invalid = json.dumps(set_rule("hz.a.1", "Not A Set")).encode()
    write_file(store, {"set": invalid, "timeout": TIMEOUT})
    return "ignoring the saved 'set' rule"


@pytest.mark.parametrize("spoil", [write_corrupt, write_old, write_unsafe, write_invalid_set])
async def test_a_corrupt_old_unsafe_or_invalid_saved_rule_is_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, spoil: Callable[[SnapshotStore], str]
) -> None:
    caplog.set_level(logging.WARNING)
    store = SnapshotStore(tmp_path)
    store.save_rules("T", "S", {"set": SET_A, "timeout": TIMEOUT})
    warning = spoil(store)
    rules = ServiceRules(RuleFeed(), "T", "S", startup_wait=SHORT_WAIT, snapshots=store)  # type: ignore[arg-type]
    try:
        await rules.settle(5.0)
        assert rules.ready and rules.get(SetRule) is None
        # Only a bad document is left out: the other kinds of that file still count.
        kept = parsed({"timeout": TIMEOUT}) if spoil is write_invalid_set else {}
        assert in_force(rules) == kept
        assert warning in caplog.text
    finally:
        await rules.close()


async def test_part_of_a_reading_is_not_saved(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    store.save_rules("T", "S", {"timeout": TIMEOUT})
    feed = RuleFeed()
    rules = ServiceRules(feed, "T", "S", snapshots=store)  # type: ignore[arg-type]
    feed.give("set", SET_A)  # the other kinds not read yet: the snapshot stays whole
    await rules.close()  # a save asked for is done before close returns
    assert saved(store) == parsed({"timeout": TIMEOUT})


async def test_rules_are_saved_once_zookeeper_gave_every_kind_then_on_every_change(
    tmp_path: Path,
) -> None:
    store = SnapshotStore(tmp_path)
    store.save_rules("T", "S", {"retry": RETRY})
    feed = RuleFeed()
    rules = ServiceRules(feed, "T", "S", snapshots=store)  # type: ignore[arg-type]
    try:
        feed.give("set", SET_A)
        give_all_but(feed, "set")  # no retry rule now: the snapshot forgets it
        await wait_until(lambda: saved(store) == parsed({"set": SET_A}), 5, "the first save")
        feed.give("timeout", TIMEOUT)
        await wait_until(
            lambda: saved(store) == parsed({"set": SET_A, "timeout": TIMEOUT}), 5, "a new rule"
        )
        feed.delete("set")
        await wait_until(lambda: saved(store) == parsed({"timeout": TIMEOUT}), 5, "a deletion")
        feed.push("timeout", timeout_ms=10_000)
        feed.push("timeout", timeout_ms=1e13)  # refused: the last good one stays, and is saved
    finally:
        await rules.close()
    assert saved(store) == {"timeout": TimeoutRule(timeout_ms=10_000)}


async def test_saves_asked_for_during_a_save_fold_into_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SnapshotStore(tmp_path)
    writes = []
    real_save = store.save_rules

    def counted(tenant: str, service: str, documents: Any) -> None:
        writes.append(dict(documents))
        real_save(tenant, service, documents)

    monkeypatch.setattr(store, "save_rules", counted)
    feed = RuleFeed()
    rules = ServiceRules(feed, "T", "S", snapshots=store)  # type: ignore[arg-type]
    give_all_but(feed)
    for ms in range(1, 101):
        feed.push("timeout", timeout_ms=ms)
    await rules.close()
    assert 1 <= len(writes) <= 2
    assert saved(store) == {"timeout": TimeoutRule(timeout_ms=100)}


# -- a real ZooKeeper -------------------------------------------------------------------------


async def test_while_zookeeper_is_up_its_rules_win_and_replace_the_snapshot(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path
) -> None:
    store = SnapshotStore(tmp_path)
    store.save_rules(tenant, SERVICE, {"set": SET_A, "timeout": TIMEOUT})
    await asyncio.to_thread(push_rule, kazoo, tenant, "set", json.loads(SET_B))
    async with csf.Consumer(
        zookeeper.url, tenant, "test", snapshot_dir=tmp_path, startup_wait=5.0
    ) as consumer:
        rules = consumer.rules(SERVICE)
        seen: list[Rule | None] = [rules.current["set"]]
        rules.on_change("set", lambda: seen.append(rules.current["set"]))
        await rules.settle(10.0)
        assert rules.ready
        assert seen == [None, parse_rule("set", SET_B)]  # never the snapshot's SET_A
        assert rules.current["timeout"] is None
        expected = {"set": parse_rule("set", SET_B)}
        await wait_until(lambda: saved(store, tenant, SERVICE) == expected, 10, "saved")


async def operate(zookeeper: LocalZooKeeper, act: Callable[[KazooClient], None]) -> None:
    """Do `act` with a kazoo client of our own, as an operator would."""

    def run() -> None:
        client = KazooClient(hosts=zookeeper.hosts)
        client.start(timeout=10)
        try:
            act(client)
        finally:
            client.stop()
            client.close()

    await asyncio.to_thread(run)


async def landed(stub: Any, deployment: Deployment, keys: range) -> dict[str, str]:
    """Key -> the SET of the provider that served it."""
    return {
        str(key): deployment.set_of.get(str(await say_hello(stub, str(key))), "failed")
        for key in keys
    }


def sets_of(rule: bytes, keys: range) -> dict[str, str]:
    parsed_rule = SetRule.parse(rule)
    return {str(key): str(parsed_rule.which(str(key))[1]) for key in keys}


@pytest.mark.timeout(120)
async def test_a_consumer_started_while_zookeeper_is_down_obeys_its_saved_rules(
    own_zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    snapshots = tmp_path / "snapshots"
    store = SnapshotStore(snapshots)
    route = {"schema": 1, "group_weights": {"normal": 1}}
    keys = range(20)
    async with deployed(own_zookeeper.url, tenant, ("hz.a.1", "hz.a.2"), 1) as deployment:
        async with csf.Consumer(own_zookeeper.url, tenant, "test", snapshot_dir=snapshots) as first:
            directory = first.directory(SERVICE)
            with_set = parsed({"set": SET_A, "route": json.dumps(route).encode()})
            await operate(own_zookeeper, lambda c: push_rule(c, tenant, "set", json.loads(SET_A)))
            await operate(own_zookeeper, lambda c: push_rule(c, tenant, "route", route))
            await wait_until(lambda: saved(store, tenant, SERVICE) == with_set, 10, "saved")
            await wait_until(lambda: len(directory.endpoints) == 2, 10, "providers listed")
        await wait_until(lambda: store.load(directory.key) is not None, 10, "providers saved")

        await own_zookeeper.astop()
        async with csf.Consumer(
            own_zookeeper.url, tenant, "test", snapshot_dir=snapshots, startup_wait=0.3
        ) as second:
            stub = second.stub(greeter_pb2_grpc.GreeterStub, service=SERVICE, timeout=5)
            assert await landed(stub, deployment, keys) == sets_of(SET_A, keys)
            rules = second.rules(SERVICE)
            assert rules.get(RouteRule) == RouteRule(group_weights={"normal": 1})

            # ZooKeeper back, with another table and no route rule: the consumer follows.
            await own_zookeeper.astart()

            def change(client: KazooClient) -> None:
                push_rule(client, tenant, "set", json.loads(SET_B))
                client.delete(f"/busidomain/csf/{tenant}/{SERVICE}/configs/route")

            await operate(own_zookeeper, change)
            expected = parse_rule("set", SET_B)
            await wait_until(lambda: rules.get(SetRule) == expected, 20, "the new set rule")
            await wait_until(lambda: rules.current["route"] is None, 10, "route removed")
            assert await landed(stub, deployment, keys) == sets_of(SET_B, keys)
