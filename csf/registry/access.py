"""Who may touch a tenant's znodes: digest credentials and the ACLs CSF writes.

A tenant configured with `digest=user:password` in its registry URL authenticates
every session with it, and every node CSF or csf-registry creates under the tenant
carries one ACL entry: that digest identity, with all permissions. Nobody else (other
tenants, anonymous clients) can read or write there. The shared parents above the
tenants (`/busidomain`, `/busidomain/csf`) are created first, readable by anyone and
open only to creating children, so every tenant can make its own node under them.
A tenant without credentials keeps ZooKeeper's open default.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError, NoNodeError
from kazoo.retry import KazooRetry
from kazoo.security import ACL, ANYONE_ID_UNSAFE, Permissions, make_digest_acl

from csf.config import ZooKeeperURL
from csf.registry.paths import ROOT, tenant_path

SHARED_ACL = [ACL(Permissions.CREATE | Permissions.READ, ANYONE_ID_UNSAFE)]


def tenant_acl(url: ZooKeeperURL) -> list[ACL] | None:
    """The ACL of every node created under the tenant; None (open) without credentials."""
    if url.digest is None:
        return None
    user, password = url.digest
    return [make_digest_acl(user, password, all=True)]


def kazoo_client(url: ZooKeeperURL, connection_retry: KazooRetry | None = None) -> KazooClient:
    """A client that authenticates as the tenant and creates nodes with the tenant's ACL."""
    return KazooClient(
        hosts=url.connect_string,
        timeout=url.session_timeout,
        connection_retry=connection_retry,
        auth_data=[("digest", ":".join(url.digest))] if url.digest else None,
        default_acl=tenant_acl(url),
    )


def shared_parents() -> list[str]:
    """The nodes above every tenant, outermost first."""
    parts = ROOT.strip("/").split("/")
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def ensure_shared_parents(client: KazooClient) -> None:
    """Create the shared parents with SHARED_ACL where missing (blocking: not on a loop)."""
    for path in shared_parents():
        with contextlib.suppress(NodeExistsError):
            client.create(path, b"", acl=SHARED_ACL)


async def ensure_shared_parents_async(call: Any, client: KazooClient) -> None:
    """The same through `call`, which turns a kazoo async result into an awaitable."""
    for path in shared_parents():
        with contextlib.suppress(NodeExistsError):
            await call(client.create_async(path, b"", acl=SHARED_ACL))


def world_readable(acls: list[ACL]) -> bool:
    return any(acl.id == ANYONE_ID_UNSAFE and acl.perms & Permissions.READ for acl in acls)


def audit(client: KazooClient, tenant: str) -> Iterator[dict[str, Any]]:
    """Every node under the tenant (itself included) that `world:anyone` may read, with
    its ACL. Needs the tenant's credentials when its nodes are closed (else NoAuthError)."""
    pending = [tenant_path(tenant)]
    while pending:
        path = pending.pop()
        try:
            acls, _ = client.get_acls(path)
        except NoNodeError:
            continue
        if world_readable(acls):
            yield {"path": path, "acl": [_describe(acl) for acl in acls]}
        try:
            pending += [f"{path}/{child}" for child in sorted(client.get_children(path))]
        except NoNodeError:
            continue


def _describe(acl: ACL) -> str:
    return f"{acl.id.scheme}:{acl.id.id}:{','.join(acl.acl_list)}"
