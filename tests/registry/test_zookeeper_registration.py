"""Registration races and ownership, against a real ZooKeeper: every registration of a
provider started while ZooKeeper is down is made; a deregistered node never comes back;
a node that cannot be placed is retried with back-off; a tenant with credentials
registers only under its own nodes, and `audit` lists every node not exactly its own."""

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.security import ACL, ANYONE_ID_UNSAFE, Id, Permissions, make_digest_acl

import csf
import csf.server
from csf._exceptions import RegistryError
from csf.config import ZooKeeperURL, parse_registry_url
from csf.registry import Instance, Registration, ServiceKey, ZooKeeperRegistry
from csf.registry.access import audit, ensure_shared_parents, kazoo_client
from csf.registry.paths import service_path, tenant_path
from csf.testing.zookeeper import LocalZooKeeper
from demo.providers import Greeter
from tests.conftest import expire_session, greeter_server, greeter_variant, wait_until

A_DIGEST, B_DIGEST = "alice:secret-a", "bob:secret-b"


def zk_url(url: str) -> ZooKeeperURL:
    parsed = parse_registry_url(url)
    assert isinstance(parsed, ZooKeeperURL)
    return parsed


@pytest.fixture
def own_kazoo(own_zookeeper: LocalZooKeeper) -> Iterator[KazooClient]:
    client = KazooClient(hosts=own_zookeeper.hosts)
    yield client
    client.stop()
    client.close()


async def test_a_provider_of_two_groups_started_while_zookeeper_is_down_registers_both(
    own_zookeeper: LocalZooKeeper,
    own_kazoo: KazooClient,
    tenant: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(csf.server, "REGISTER_WAIT", 0.5)
    await asyncio.to_thread(own_zookeeper.stop)
    server = csf.Server(
        registry=own_zookeeper.url, tenant=tenant, deregister_wait=0, handle_signals=False
    )
    server.add(Greeter(lambda: server.address))
    server.add(greeter_variant(group="gray")(lambda: server.address))
    async with server:
        await asyncio.to_thread(own_zookeeper.start)
        await asyncio.to_thread(own_kazoo.start, 10)
        cluster = f"{service_path(tenant, 'XIESR')}/clusters/defaultCluster"
        paths = [f"{cluster}/{group}/{server.address}" for group in ("normal", "gray")]

        async def both_registered() -> bool:
            found = [await asyncio.to_thread(own_kazoo.exists, path) for path in paths]
            return all(found)

        await wait_until(both_registered, 20, "both groups registered")


async def test_a_node_deregistered_during_a_re_registration_does_not_come_back(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str
) -> None:
    registry = ZooKeeperRegistry(zk_url(zookeeper.url))
    await registry.start()
    registration = Registration(
        ServiceKey(tenant, "XIESR", "defaultCluster"), Instance(host="127.0.0.1", port=61100)
    )
    try:
        await registry.register(registration)
        # Hold the re-registration that follows the session's expiry in mid-attempt.
        gate, held = asyncio.Event(), asyncio.Event()
        attempt = registry._ensure_once

        async def held_attempt(path: str, data: bytes) -> str | None:
            held.set()
            await gate.wait()
            return await attempt(path, data)

        registry._ensure_once = held_attempt  # type: ignore[method-assign]
        await asyncio.to_thread(expire_session, zookeeper.hosts, registry.client)
        await asyncio.wait_for(held.wait(), 20)
        deregistering = asyncio.create_task(registry.deregister(registration))
        await asyncio.sleep(0.1)  # let deregister run as far as it will before the gate
        gate.set()
        await asyncio.wait_for(deregistering, 10)
        for _ in range(20):  # and it stays gone
            assert await asyncio.to_thread(kazoo.exists, registration.path) is None
            await asyncio.sleep(0.05)
    finally:
        await registry.close()


async def test_a_node_that_cannot_be_replaced_is_retried_with_back_off_and_told_once(
    zookeeper: LocalZooKeeper,
    kazoo: KazooClient,
    tenant: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="csf.registry")
    registration = Registration(
        ServiceKey(tenant, "XIESR", "defaultCluster"), Instance(host="127.0.0.1", port=61101)
    )
    group = registration.path.rsplit("/", 1)[0]
    # A group nobody may delete in, holding a node of no session at our address.
    no_delete = Permissions.ALL & ~Permissions.DELETE
    await asyncio.to_thread(kazoo.ensure_path, group.rsplit("/", 1)[0])
    await asyncio.to_thread(kazoo.create, group, b"", acl=[ACL(no_delete, ANYONE_ID_UNSAFE)])
    await asyncio.to_thread(kazoo.create, registration.path, b"{}")
    registry = ZooKeeperRegistry(zk_url(zookeeper.url))
    await registry.start()
    attempts = 0
    transaction = registry.client.transaction

    def counted() -> Any:
        nonlocal attempts
        attempts += 1
        return transaction()

    registry.client.transaction = counted  # type: ignore[method-assign]
    registering = asyncio.create_task(registry.register(registration))
    try:
        await wait_until(lambda: attempts >= 1, 10, "the first attempt")
        await asyncio.sleep(1.5)  # a window to count attempts in
        assert attempts < 15, f"{attempts} attempts in 1.5 s: no back-off"
        told = [r for r in caplog.records if f"cannot place {registration.path}" in r.message]
        assert len(told) == 1
    finally:
        registering.cancel()
        await asyncio.gather(registering, return_exceptions=True)
        await registry.close()


async def test_a_provider_refuses_to_register_under_a_node_another_identity_made(
    zookeeper: LocalZooKeeper, tenant: str
) -> None:
    intruder = KazooClient(hosts=zookeeper.hosts, auth_data=[("digest", B_DIGEST)])
    await asyncio.to_thread(intruder.start, 10)
    user, password = B_DIGEST.split(":")
    theirs = [make_digest_acl(user, password, all=True), ACL(Permissions.READ, ANYONE_ID_UNSAFE)]
    try:
        await asyncio.to_thread(intruder.ensure_path, "/busidomain/csf")
        await asyncio.to_thread(intruder.create, tenant_path(tenant), b"", acl=theirs)
        server = greeter_server(f"{zookeeper.url}?digest={A_DIGEST}", tenant)
        with pytest.raises(RegistryError) as refused:
            async with server:
                pass
        message = str(refused.value)
        assert tenant_path(tenant) in message and "digest:bob:" in message
        assert "secret" not in message
    finally:
        await asyncio.to_thread(intruder.stop)
        await asyncio.to_thread(intruder.close)


async def test_audit_lists_every_node_whose_acl_is_not_exactly_the_tenants_own(
    zookeeper: LocalZooKeeper, tenant: str
) -> None:
    url = zk_url(f"{zookeeper.url}?digest={A_DIGEST}")
    user, password = A_DIGEST.split(":")
    own = make_digest_acl(user, password, all=True)
    odd = {
        "world-create": [own, ACL(Permissions.CREATE, ANYONE_ID_UNSAFE)],
        "world-write": [own, ACL(Permissions.WRITE | Permissions.DELETE, ANYONE_ID_UNSAFE)],
        "ip": [own, ACL(Permissions.READ, Id("ip", "0.0.0.0/0"))],
        "other-digest": [make_digest_acl("bob", "secret-b", all=True), own],
        "fewer-perms": [make_digest_acl(user, password, read=True, write=True)],
    }
    client = kazoo_client(url)
    await asyncio.to_thread(client.start, 10)
    try:
        root = tenant_path(tenant)
        await asyncio.to_thread(ensure_shared_parents, client)
        await asyncio.to_thread(client.ensure_path, f"{root}/XIESR/fine")
        for name, acl in odd.items():
            await asyncio.to_thread(client.create, f"{root}/XIESR/{name}", b"", acl=acl)
        found = await asyncio.to_thread(lambda: list(audit(client, tenant)))
    finally:
        await asyncio.to_thread(client.stop)
        await asyncio.to_thread(client.close)
    listed = {node["path"].rsplit("/", 1)[-1] for node in found}
    assert listed == set(odd), found


async def test_a_server_refused_one_group_fails_to_start_and_leaves_no_node(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str
) -> None:
    url = zk_url(f"{zookeeper.url}?digest={A_DIGEST}")
    user, password = A_DIGEST.split(":")
    not_only_own = [
        make_digest_acl(user, password, all=True),
        ACL(Permissions.READ, ANYONE_ID_UNSAFE),
    ]
    cluster = f"{service_path(tenant, 'XIESR')}/clusters/defaultCluster"
    client = kazoo_client(url)
    await asyncio.to_thread(client.start, 10)
    registry = ZooKeeperRegistry(url)  # shared: its session outlives the server
    await registry.start()
    try:
        await asyncio.to_thread(ensure_shared_parents, client)
        await asyncio.to_thread(client.ensure_path, cluster)
        await asyncio.to_thread(client.create, f"{cluster}/gray", b"", acl=not_only_own)
        server = greeter_server(registry, tenant)  # type: ignore[arg-type]
        server.add(greeter_variant(group="gray")(lambda: server.address))
        with pytest.raises(RegistryError, match=f"{cluster}/gray"):
            await server.start()
        normal = f"{cluster}/normal/{server.address}"
        for _ in range(20):  # and the other group's node never appears
            assert await asyncio.to_thread(kazoo.exists, normal) is None
            await asyncio.sleep(0.05)
        # Nor after the shared registry's next session: it was not left as wanted.
        session = registry.session_id
        await asyncio.to_thread(expire_session, zookeeper.hosts, registry.client)
        await wait_until(lambda: registry.session_id not in (None, session), 20, "a new session")
        await registry.wait_connected()
        for _ in range(20):
            assert await asyncio.to_thread(kazoo.exists, normal) is None
            await asyncio.sleep(0.05)
    finally:
        await registry.close()
        await asyncio.to_thread(client.stop)
        await asyncio.to_thread(client.close)
