"""Applied by whom, on a real ZooKeeper: a consumer that calls and a provider that serves
each keep an ephemeral node `applied/<kind>/<process>` saying which version of the rule
they applied, or refused and why; the node follows each new version, goes when its
holder closes, comes back after a session expiry, and carries the tenant's ACL."""

import asyncio
import json
from pathlib import Path
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

import csf
from csf.config import ZooKeeperURL, parse_registry_url
from csf.registry import ZooKeeperRegistry
from csf.registry.access import is_own_acl, tenant_acl
from csf.registry.admin import RegistryAdmin
from csf.registry.paths import applied_path
from csf.rules import ConcurrencyRule
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from demo.providers import Greeter
from tests.conftest import consumer_for, expire_session, push_rule, serving, wait_until

KIND = "concurrency"


def rule(limit: object) -> dict[str, Any]:
    return {"schema": 1, "consumer": limit, "provider": limit}


def read_nodes(kazoo: KazooClient, tenant: str) -> dict[str, tuple[dict[str, Any], int]]:
    """Each applied node of the concurrency rule: its document and its session."""
    base = applied_path(tenant, "XIESR", KIND)
    found = {}
    try:
        names = kazoo.get_children(base)
    except NoNodeError:
        return {}
    for name in names:
        try:
            data, stat = kazoo.get(f"{base}/{name}")
        except NoNodeError:
            continue
        found[name] = (json.loads(data), stat.ephemeralOwner)
    return found


async def nodes(kazoo: KazooClient, tenant: str) -> dict[str, tuple[dict[str, Any], int]]:
    return await asyncio.to_thread(read_nodes, kazoo, tenant)


def url(zookeeper: LocalZooKeeper) -> ZooKeeperURL:
    parsed = parse_registry_url(zookeeper.url)
    assert isinstance(parsed, ZooKeeperURL)
    return parsed


async def test_a_consumer_and_a_provider_record_each_version_they_applied_or_refused(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path
) -> None:
    await asyncio.to_thread(push_rule, kazoo, tenant, KIND, rule(50))
    async with (
        serving(zookeeper.url, tenant, Greeter) as [server],
        consumer_for(zookeeper.url, tenant, tmp_path, app="web") as consumer,
    ):
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR")
        await stub.SayHello(greeter_pb2.HelloRequest(name="x"), timeout=5)
        holders = {consumer.rules("XIESR"), server.rules("XIESR")}
        names = {rules.applied.process for rules in holders}

        async def told(version: int, status: str) -> bool:
            found = await nodes(kazoo, tenant)
            return set(found) == names and all(
                (doc["version"], doc["status"]) == (version, status) for doc, _ in found.values()
            )

        await wait_until(lambda: told(0, "applied"), 10, "version 0 applied by both")
        found = await nodes(kazoo, tenant)
        roles = {(doc["role"], doc["app"], doc["reason"]) for doc, _ in found.values()}
        assert roles == {("consumer", "web", None), ("provider", None, None)}

        await asyncio.to_thread(push_rule, kazoo, tenant, KIND, rule(20))
        await wait_until(lambda: told(1, "applied"), 10, "version 1 applied by both")

        await asyncio.to_thread(push_rule, kazoo, tenant, KIND, rule("many"))
        await wait_until(lambda: told(2, "refused"), 10, "version 2 refused by both")
        found = await nodes(kazoo, tenant)
        assert all("consumer" in doc["reason"] for doc, _ in found.values()), found
        for rules in holders:
            assert rules.current[KIND] == ConcurrencyRule(consumer=20, provider=20)

        with RegistryAdmin(url(zookeeper), tenant) as admin:
            summary = await asyncio.to_thread(admin.applied_summary, "XIESR", KIND)
        assert (summary.version, summary.total, summary.current) == (2, 2, 0)
        assert {entry["process"] for entry in summary.refused} == names

        await asyncio.to_thread(push_rule, kazoo, tenant, KIND, rule(30))
        await wait_until(lambda: told(3, "applied"), 10, "version 3 applied by both")
        with RegistryAdmin(url(zookeeper), tenant) as admin:
            summary = await asyncio.to_thread(admin.applied_summary, "XIESR", KIND)
        assert (summary.version, summary.total, summary.current) == (3, 2, 2)
    assert await nodes(kazoo, tenant) == {}, "closed, they leave no node"


async def test_a_consumer_closed_on_a_shared_registry_removes_its_nodes(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path
) -> None:
    await asyncio.to_thread(push_rule, kazoo, tenant, KIND, rule(50))
    registry = ZooKeeperRegistry(url(zookeeper))
    await registry.start()
    try:
        async with csf.Consumer(registry, tenant, "web", snapshot_dir=tmp_path) as consumer:
            name = consumer.rules("XIESR").applied.process
            await wait_until(lambda: _has(kazoo, tenant, name), 10, "the consumer's node")
        # The session lives on (the registry is shared): the node is deleted, not expired.
        await wait_until(lambda: _lacks(kazoo, tenant, name), 10, "the node gone on close")
        assert registry.connected
    finally:
        await registry.close()


async def _has(kazoo: KazooClient, tenant: str, name: str) -> bool:
    return name in await nodes(kazoo, tenant)


async def _lacks(kazoo: KazooClient, tenant: str, name: str) -> bool:
    return name not in await nodes(kazoo, tenant)


async def test_after_a_session_expiry_the_node_comes_back_under_the_new_session(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path
) -> None:
    await asyncio.to_thread(push_rule, kazoo, tenant, KIND, rule(50))
    async with consumer_for(zookeeper.url, tenant, tmp_path) as consumer:
        name = consumer.rules("XIESR").applied.process
        await wait_until(lambda: _has(kazoo, tenant, name), 10, "the consumer's node")
        registry = consumer._registry
        assert isinstance(registry, ZooKeeperRegistry)
        old_session = registry.session_id
        await asyncio.to_thread(expire_session, zookeeper.hosts, registry.client)

        async def back_under_new_session() -> bool:
            found = (await nodes(kazoo, tenant)).get(name)
            session = registry.session_id
            return (
                found is not None
                and session not in (None, old_session)
                and found[1] == session
                and found[0]["version"] == 0
            )

        await wait_until(back_under_new_session, 20, "the node made again after expiry")


async def test_a_tenant_with_credentials_owns_its_applied_nodes(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    secured = f"{zookeeper.url}?digest=alice:secret-a"
    parsed = parse_registry_url(secured)
    assert isinstance(parsed, ZooKeeperURL)
    with RegistryAdmin(parsed, tenant) as admin:
        await asyncio.to_thread(
            admin.set_rule, "XIESR", KIND, json.dumps(rule(50)).encode(), force=True
        )
        async with consumer_for(secured, tenant, tmp_path) as consumer:
            name = consumer.rules("XIESR").applied.process
            base = applied_path(tenant, "XIESR", KIND)

            def placed() -> bool:
                return admin.client.exists(f"{base}/{name}") is not None

            await wait_until(lambda: asyncio.to_thread(placed), 10, "the consumer's node")
            for path in (applied_path(tenant, "XIESR", KIND).rsplit("/", 1)[0], base):
                acls, _ = await asyncio.to_thread(admin.client.get_acls, path)
                assert is_own_acl(acls, tenant_acl(parsed)), path
            acls, _ = await asyncio.to_thread(admin.client.get_acls, f"{base}/{name}")
            assert is_own_acl(acls, tenant_acl(parsed))
            [entry] = await asyncio.to_thread(admin.applied, "XIESR", KIND)
            assert (entry["process"], entry["version"], entry["status"]) == (name, 0, "applied")
