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
from collections.abc import Iterator, Sequence
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError, NodeExistsError, NoNodeError
from kazoo.retry import KazooRetry
from kazoo.security import ACL, ANYONE_ID_UNSAFE, Permissions, make_digest_acl

from csf.config import ZooKeeperURL
from csf.registry._kazoo_log import mask_kazoo_credentials
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
    mask_kazoo_credentials()
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


def is_own_acl(acls: Sequence[ACL], own: Sequence[ACL] | None) -> bool:
    """Whether `acls` is exactly `own` (in any order); never for an open tenant (None),
    which owns nothing: its nodes are open or someone else's."""
    if not own:
        return False
    return _entries(acls) == _entries(own)


def describe_acls(acls: Sequence[ACL]) -> list[str]:
    """Each entry as `scheme:id:PERMS` (a digest id is a hash, never a password)."""
    return [f"{acl.id.scheme}:{acl.id.id}:{','.join(acl.acl_list)}" for acl in acls]


def tenant_ancestors(tenant: str, path: str) -> list[str]:
    """The nodes from the tenant's own (included) down to `path`'s parent."""
    root = tenant_path(tenant)
    if not path.startswith(root + "/"):
        raise ValueError(f"{path} is not under {root}")
    parts = path[len(root) + 1 :].split("/")[:-1]
    return [root] + [f"{root}/{'/'.join(parts[: i + 1])}" for i in range(len(parts))]


def audit(client: KazooClient, tenant: str) -> Iterator[dict[str, Any]]:
    """Every node under the tenant (itself included) whose ACL is not exactly the tenant's
    own, with its ACL: open to anyone in any way, `ip:` entries, other identities, missing
    permissions. The tenant's own ACL is the one `client` creates nodes with
    (`kazoo_client`); without credentials there is none and every node is listed. A node
    under the tenant's that the credentials may not read is listed as `unreadable` (with
    what of its ACL could be read), and nothing under it is audited. NoAuthError for the
    tenant's node itself: the credentials are wrong or missing."""
    own = client.default_acl
    root = tenant_path(tenant)
    pending = [root]
    while pending:
        path = pending.pop()
        acls: list[ACL] = []
        try:
            acls, _ = client.get_acls(path)
            children = client.get_children(path)
        except NoNodeError:
            continue
        except NoAuthError:
            if path == root:
                raise
            yield {"path": path, "acl": describe_acls(acls), "unreadable": True}
            continue
        if not is_own_acl(acls, own):
            yield {"path": path, "acl": describe_acls(acls), "unreadable": False}
        pending += [f"{path}/{child}" for child in sorted(children)]


def _entries(acls: Sequence[ACL]) -> set[tuple[str, str, int]]:
    return {(acl.id.scheme, acl.id.id, acl.perms) for acl in acls}
