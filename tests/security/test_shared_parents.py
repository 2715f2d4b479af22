"""The shared parents above the tenants: anyone may read them and create children, no more."""

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import ACL, ANYONE_ID_UNSAFE, OPEN_ACL_UNSAFE, Permissions
from typer.testing import CliRunner

from csf.registry.cli import app
from csf.testing.zookeeper import LocalZooKeeper
from tests.conftest import greeter_server

SHARED = ["/busidomain", "/busidomain/csf"]
CREATE_AND_READ = [ACL(Permissions.CREATE | Permissions.READ, ANYONE_ID_UNSAFE)]


def anonymous(zookeeper: LocalZooKeeper) -> KazooClient:
    client = KazooClient(hosts=zookeeper.hosts)
    client.start(timeout=10)
    return client


def finish(client: KazooClient) -> None:
    client.stop()
    client.close()


def outcomes(attempts: dict[str, Callable[[], Any]]) -> dict[str, str]:
    """What each attempt ended in: 'NoAuth', or what happened instead."""
    found = {}
    for name, attempt in attempts.items():
        try:
            attempt()
        except NoAuthError:
            found[name] = "NoAuth"
        except Exception as exc:
            found[name] = repr(exc)
        else:
            found[name] = "allowed"
    return found


def check_shared_parents(zookeeper: LocalZooKeeper, tenant: str) -> None:
    """As an anonymous client: read, list and add a tenant, and nothing else (blocking)."""
    client = anonymous(zookeeper)
    try:
        for path in SHARED:
            acls, _ = client.get_acls(path)
            assert [(acl.id, acl.perms) for acl in acls] == [
                (ANYONE_ID_UNSAFE, Permissions.CREATE | Permissions.READ)
            ], path
            assert client.get(path)[0] == b""
        assert client.get_children("/busidomain") == ["csf"]
        assert tenant in client.get_children("/busidomain/csf")

        newcomer = f"/busidomain/csf/{tenant}-newcomer"
        client.create(newcomer, b"")
        attempts: dict[str, Callable[[], Any]] = {}
        for path in SHARED:
            attempts[f"set {path}"] = functools.partial(client.set, path, b"mine")
            attempts[f"set_acls {path}"] = functools.partial(client.set_acls, path, OPEN_ACL_UNSAFE)
        attempts["delete /busidomain/csf"] = functools.partial(client.delete, "/busidomain/csf")
        attempts["delete a tenant's node"] = functools.partial(client.delete, newcomer)
        assert outcomes(attempts) == dict.fromkeys(attempts, "NoAuth")
        assert len(attempts) == 6
        for path in SHARED:  # nothing changed
            assert client.get(path)[0] == b"", path
            assert client.get_acls(path)[0] == CREATE_AND_READ, path
        assert client.exists(newcomer) is not None
    finally:
        finish(client)


def children(zookeeper: LocalZooKeeper, path: str) -> list[str]:
    client = anonymous(zookeeper)
    try:
        found: list[str] = client.get_children(path)
        return found
    finally:
        finish(client)


# A fresh ZooKeeper in each test: the closed tenant is the first to create the parents.


async def test_a_closed_tenants_provider_leaves_the_shared_parents_open_only_to_children(
    own_zookeeper: LocalZooKeeper, tenant: str
) -> None:
    async with greeter_server(f"{own_zookeeper.url}?digest=alice:secret-a", tenant):
        await asyncio.to_thread(check_shared_parents, own_zookeeper, tenant)
        # Another closed tenant registers under the same parents.
        other = f"{own_zookeeper.url}?digest=bob:secret-b"
        async with greeter_server(other, f"{tenant}-b"):
            found = await asyncio.to_thread(children, own_zookeeper, "/busidomain/csf")
        assert f"{tenant}-b" in found


def test_csf_registry_with_a_digest_leaves_the_shared_parents_open_only_to_children(
    own_zookeeper: LocalZooKeeper, tenant: str
) -> None:
    rule = '{"schema": 1, "timeout_ms": 800}'
    command = ["--zk", own_zookeeper.url, "--tenant", tenant, "--digest", "alice:secret-a",
               "rule", "set", "XIESR", "timeout", "--json", rule, "--force"]  # fmt: skip
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.stderr
    check_shared_parents(own_zookeeper, tenant)
