"""Who is logged in to the console: one ZooKeeper session per login, behind an opaque id.

A login opens its own kazoo client (a `RegistryAdmin`) with the tenant's digest
credentials, and is accepted only if that identity is in the tenant root's ACL with every
permission; a tenant whose root is open to anyone only when the console was started with
`open_tenants`. Logins never share a client, so one operator's credentials never act for
another. The browser holds only a random id signed with the console's own key; an id
unused for `idle_s` is closed, and at most `max_logins` are open at once (the oldest
idle one goes first).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from kazoo.exceptions import KazooException, NoAuthError, NoNodeError
from kazoo.security import Permissions, make_digest_acl_credential

from csf._exceptions import ConfigError
from csf.config import ZooKeeperURL, check_name
from csf.console.caller import Caller
from csf.registry.admin import RegistryAdmin, RegistryUnreachable
from csf.registry.paths import tenant_path

MAX_CREDENTIAL_CHARS = 256
MAX_PENDING = 8
MAX_CONNECTING = 4  # logins connecting to ZooKeeper at once; more are refused at once
SWEEP_S = 60.0
REFUSED = "tenant, user or password not accepted"
"""One message for every refused login: it must not tell which tenants exist."""


class LoginRefused(Exception):
    """The login is refused; the message says why, as the page shows it."""


@dataclass
class Login:
    id: str
    tenant: str
    user: str
    admin: RegistryAdmin
    registry: ZooKeeperURL
    """The login's ZooKeeper, with its digest: what its own consumer connects with."""
    csrf_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    last_used: float = field(default_factory=time.monotonic)
    pending: dict[str, Any] = field(default_factory=dict)
    """What a preview showed and its confirm will write (an import, a rule), by token."""
    streams: int = 0
    """Its pages' event streams open now."""
    flash: str | None = None
    """What the last action did, shown once by the next page."""
    caller: Caller | None = None
    """The login's consumer ("try a call"), made on its first try, closed at logout."""

    def keep(self, value: Any) -> str:
        """Keep what a preview showed until its confirm; a token naming it. Only the
        last few previews are kept."""
        while len(self.pending) >= MAX_PENDING:
            del self.pending[next(iter(self.pending))]
        token = secrets.token_urlsafe(16)
        self.pending[token] = value
        return token

    def take_flash(self) -> str | None:
        flash, self.flash = self.flash, None
        return flash


def _credentials(tenant: str, user: str, password: str) -> tuple[str, tuple[str, str] | None]:
    try:
        check_name("tenant", tenant)
    except ConfigError:
        raise LoginRefused(f"tenant: {tenant[:64]!r} is not a valid tenant name") from None
    if len(user) > MAX_CREDENTIAL_CHARS or len(password) > MAX_CREDENTIAL_CHARS:
        raise LoginRefused(f"user and password: at most {MAX_CREDENTIAL_CHARS} characters")
    if ":" in user:
        raise LoginRefused("user: a digest user name has no ':'")
    if not user and not password:
        return tenant, None
    if not user or not password:
        raise LoginRefused("user and password: give both, or neither for an open tenant")
    return tenant, (user, password)


def _holds_root(admin: RegistryAdmin, digest: tuple[str, str] | None, open_tenants: bool) -> None:
    """Refuse unless `digest` holds the tenant root's ACL (or the root is open to anyone
    and open tenants are allowed). Blocking: runs in a worker thread."""
    root = tenant_path(admin.tenant)
    try:
        acls, _ = admin.client.get_acls(root)
        admin.client.get_children(root)  # the identity must also be able to read it
    except (NoNodeError, NoAuthError):
        raise LoginRefused(REFUSED) from None
    everyone = {(a.id.scheme, a.id.id) for a in acls} == {("world", "anyone")}
    if everyone:
        if not open_tenants:
            raise LoginRefused(
                f"{REFUSED}: the tenant has no ACL; this console was not started with "
                "--open-tenants"
            )
        return
    if digest is None:
        raise LoginRefused(REFUSED)
    identity = make_digest_acl_credential(*digest)
    if not any(
        a.id.scheme == "digest" and a.id.id == identity and a.perms == Permissions.ALL for a in acls
    ):
        raise LoginRefused(REFUSED)


def _open(
    url: ZooKeeperURL, tenant: str, digest: tuple[str, str] | None, open_tenants: bool
) -> RegistryAdmin:
    """A connected admin for the login, `url` carrying its digest (blocking: runs in a
    worker thread)."""
    admin = RegistryAdmin(url, tenant)
    try:
        admin.__enter__()
    except RegistryUnreachable as exc:
        raise LoginRefused(str(exc)) from None
    try:
        _holds_root(admin, digest, open_tenants)
    except (LoginRefused, KazooException) as exc:
        admin.__exit__(None, None, None)
        if isinstance(exc, LoginRefused):
            raise
        raise LoginRefused(f"ZooKeeper refused the login ({type(exc).__name__})") from None
    return admin


class Logins:
    """The open logins, by id; `close` closes every one."""

    def __init__(
        self, url: ZooKeeperURL, *, open_tenants: bool, idle_s: float, max_logins: int
    ) -> None:
        self._url = url
        self._open_tenants = open_tenants
        self._idle_s = idle_s
        self._max = max_logins
        self._key = secrets.token_bytes(32)
        self._logins: dict[str, Login] = {}
        self._connecting = asyncio.Semaphore(MAX_CONNECTING)
        self._sweeper: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Close logins left idle every minute, until `close` (on the running loop)."""
        self._sweeper = asyncio.create_task(self._sweep(), name="csf-console-logins")

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_S)
            await self._expire()

    async def login(self, tenant: str, user: str, password: str) -> Login:
        """A new login, or LoginRefused saying why. Logins in use are never closed to make
        room: when `max_logins` are in use, a new one is refused. At most
        MAX_CONNECTING logins connect at once (each may wait seconds on ZooKeeper)."""
        tenant, digest = _credentials(tenant, user, password)
        await self._expire()
        if self._full() or self._connecting.locked():
            raise LoginRefused("the console is busy: too many logins; try again later")
        url = dataclasses.replace(self._url, digest=digest)
        async with self._connecting:
            admin = await asyncio.to_thread(_open, url, tenant, digest, self._open_tenants)
        if self._full():  # others came in while this one connected
            await asyncio.to_thread(admin.__exit__, None, None, None)
            raise LoginRefused("the console is busy: too many logins; try again later")
        login = Login(secrets.token_urlsafe(32), tenant, user, admin, url)
        self._logins[login.id] = login
        return login

    def _full(self) -> bool:
        return len(self._logins) >= self._max

    def cookie(self, login: Login) -> str:
        """The cookie's value: the login's id and its signature, nothing else."""
        return f"{login.id}.{self._signature(login.id)}"

    def _signature(self, login_id: str) -> str:
        return hmac.new(self._key, login_id.encode(), hashlib.sha256).hexdigest()

    def find(self, cookie: str | None) -> Login | None:
        """The live login a cookie names; None for anything else."""
        if not cookie or len(cookie) > 200 or not cookie.isascii() or "." not in cookie:
            return None
        login_id, signature = cookie.rsplit(".", 1)
        if not hmac.compare_digest(signature, self._signature(login_id)):
            return None
        login = self._logins.get(login_id)
        now = time.monotonic()
        if login is None or now - login.last_used > self._idle_s:
            return None
        login.last_used = now
        return login

    def find_id(self, login_id: str) -> Login | None:
        """The login with this id, if open and not idle (its page's event stream asks:
        an open page alone does not keep a login)."""
        login = self._logins.get(login_id)
        if login is None or time.monotonic() - login.last_used > self._idle_s:
            return None
        return login

    async def logout(self, login_id: str) -> None:
        login = self._logins.pop(login_id, None)
        if login is not None:
            try:
                if login.caller is not None:
                    await login.caller.close()
            finally:
                await asyncio.to_thread(login.admin.__exit__, None, None, None)

    async def _expire(self) -> None:
        now = time.monotonic()
        for login in list(self._logins.values()):
            if now - login.last_used > self._idle_s:
                await self.logout(login.id)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for login_id in list(self._logins):
            await self.logout(login_id)
