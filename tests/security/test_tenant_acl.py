"""Tenant isolation: a tenant with digest credentials owns every node CSF writes for it."""

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError

import csf
from csf.config import ZooKeeperURL, parse_registry_url
from csf.registry.admin import RegistryAdmin
from csf.registry.paths import tenant_path
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from tests.conftest import consumer_for, greeter_server

A_DIGEST, B_DIGEST = "alice:secret-a", "bob:secret-b"


def client(zookeeper: LocalZooKeeper, digest: str | None) -> KazooClient:
    auth = [("digest", digest)] if digest else None
    kazoo = KazooClient(hosts=zookeeper.hosts, auth_data=auth)
    kazoo.start(timeout=10)
    return kazoo


def finish(kazoo: KazooClient) -> None:
    kazoo.stop()
    kazoo.close()


def subtree(kazoo: KazooClient, root: str) -> Iterator[str]:
    yield root
    for child in kazoo.get_children(root):
        yield from subtree(kazoo, f"{root}/{child}")


def csf_registry(
    zookeeper: LocalZooKeeper, tenant: str, *args: str
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "csf.registry.cli", "--zk", zookeeper.url, "--tenant", tenant]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=60, check=False
    )


def let_through(outsider: KazooClient, nodes: list[str], leaf: str) -> list[str]:
    """Every read and write of `outsider` on `nodes` that did not end in NoAuth."""
    passed = []
    for node in nodes:
        attempts = {
            "get": lambda node=node: outsider.get(node),
            "get_children": lambda node=node: outsider.get_children(node),
            "set": lambda node=node: outsider.set(node, b"{}"),
            "create": lambda node=node: outsider.create(f"{node}/intruder", b""),
            "delete": lambda: outsider.delete(leaf),
        }
        for name, attempt in attempts.items():
            try:
                attempt()
            except NoAuthError:
                continue
            except Exception as exc:
                passed.append(f"{name} {node}: {exc!r}")
                continue
            passed.append(f"{name} {node}: allowed")
    return passed


async def test_other_tenants_and_anonymous_clients_get_noauth_everywhere(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    url = f"{zookeeper.url}?digest={A_DIGEST}"
    parsed = parse_registry_url(url)
    assert isinstance(parsed, ZooKeeperURL)
    with RegistryAdmin(parsed, tenant) as admin:  # configs/ and subscriptions/ nodes too
        admin.set_rule(
            "XIESR", "breaker", json.dumps({"schema": 1, "min_calls": 5}).encode(), force=True
        )
    async with greeter_server(url, tenant) as server, consumer_for(url, tenant, tmp_path) as own:
        stub = own.stub(greeter_pb2_grpc.GreeterStub, service="XIESR")
        reply = await stub.SayHello(greeter_pb2.HelloRequest(name="x"))
        assert reply.served_by == server.address

        owner = await asyncio.to_thread(client, zookeeper, A_DIGEST)
        nodes = list(await asyncio.to_thread(lambda: list(subtree(owner, tenant_path(tenant)))))
        instance = next(n for n in nodes if n.endswith(server.address))
        assert any(n.endswith("/configs/breaker") for n in nodes)
        assert (await asyncio.to_thread(owner.get, instance))[1].ephemeralOwner != 0

        for digest in (B_DIGEST, None):
            outsider = await asyncio.to_thread(client, zookeeper, digest)
            try:
                assert await asyncio.to_thread(let_through, outsider, nodes, instance) == []
            finally:
                await asyncio.to_thread(finish, outsider)

        # A CSF consumer holding tenant B's credentials sees no provider of tenant A.
        other = f"{zookeeper.url}?digest={B_DIGEST}"
        async with consumer_for(other, tenant, tmp_path / "b") as intruder:
            stranger = intruder.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=1)
            with pytest.raises(csf.NoProviderError):
                await stranger.SayHello(greeter_pb2.HelloRequest(name="x"))

        result = await asyncio.to_thread(
            csf_registry, zookeeper, tenant, "--digest", A_DIGEST, "--json", "audit"
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == []
        await asyncio.to_thread(finish, owner)


async def test_audit_lists_the_open_nodes_of_a_tenant_without_credentials(
    zookeeper: LocalZooKeeper, tenant: str
) -> None:
    async with greeter_server(zookeeper.url, tenant) as server:
        result = await asyncio.to_thread(csf_registry, zookeeper, tenant, "--json", "audit")
    assert result.returncode == 4
    found = {node["path"] for node in json.loads(result.stdout)}
    assert tenant_path(tenant) in found
    assert any(path.endswith(server.address) for path in found)
    assert all("world:anyone" in " ".join(n["acl"]) for n in json.loads(result.stdout))
