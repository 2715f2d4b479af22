"""The ZooKeeper registry (kazoo), asyncio side up.

kazoo runs its own threads. Nothing here blocks the event loop: every request is
kazoo's `*_async` form turned into an asyncio future, and every kazoo callback
(watches, session state) hops to the loop with `call_soon_threadsafe`.

- Registrations are kept as wanted state: after every (re)connection each one is
  checked and written again when missing or owned by an older session. A deregistered
  one is never written again, not even by an attempt already in flight.
- A tenant with credentials registers only under nodes that carry its own ACL.
- The applied-rule nodes (csf.registry.applied) are wanted state too: one task writes
  them in the background, the last document reported for a node wins, and after every
  (re)connection each is checked and written again; a failure is logged and retried
  then, never raised to the one who reported.
- A subscription re-lists its service after any watch event, and in full after every
  reconnection: kazoo (2.11) sends no SetWatches, so ZooKeeper forgets a connection's
  watches when it drops and only a read can set them again. That re-list waits a random
  part of `RELIST_JITTER` first, so that a fleet reconnecting together is spread out.
  While ZooKeeper is away the listener simply hears nothing and keeps its view.
- Nothing one node holds can stop a watch: a node that is unreadable, malformed or (for
  a tenant with credentials) not the tenant's own is skipped, and told once per version
  through `Rejections`; the rest of the list is delivered.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Hashable, Sequence
from types import MappingProxyType
from typing import Any

from kazoo.client import KazooState
from kazoo.exceptions import (
    ConnectionLoss,
    KazooException,
    NoAuthError,
    NodeExistsError,
    NoNodeError,
    OperationTimeoutError,
    SessionExpiredError,
)
from kazoo.protocol.states import EventType, WatchedEvent
from kazoo.retry import KazooRetry
from kazoo.security import ACL

from csf._exceptions import RegistryError
from csf.bounds import MAX_DESCRIPTORS
from csf.config import ZooKeeperURL
from csf.registry._base import (
    DescriptorsListener,
    LifecycleListener,
    ProviderListener,
    Registration,
    RuleListener,
    ServiceKey,
    SubscribersListener,
    Subscription,
)
from csf.registry.access import (
    describe_acls,
    ensure_shared_parents_async,
    is_own_acl,
    kazoo_client,
    tenant_acl,
    tenant_ancestors,
)
from csf.registry.instance import Instance, InstanceFormatError
from csf.registry.lifecycle import LifecycleFormatError, descriptor_path, parse_status
from csf.registry.paths import (
    applied_path,
    cluster_path,
    rule_path,
    subscriptions_path,
    tenant_path,
)
from csf.registry.rejections import Rejections

logger = logging.getLogger("csf.registry")

# Reconnection: exponential from 0.1 s up to 2 s, each delay jittered by up to 50%.
_CONNECTION_RETRY = dict(max_tries=-1, delay=0.1, backoff=2, max_delay=2.0, max_jitter=0.5)
_RELIST_BACKOFF = (0.05, 1.0)
# After a reconnection every watch re-reads all it follows; each first waits uniform(0, this)
# seconds, so that 1,000 consumers back at once reach ZooKeeper over a second, not an
# instant (ZooKeeper's own Java client sleeps up to 1 s before reconnecting, for the same
# herd). The first connection is not delayed. The registry benchmark sets it to 0.
RELIST_JITTER = 1.0
# A read ZooKeeper refuses (NoAuth, say) is tried again slowly: an ACL change fires no watch.
_REFUSED_BACKOFF = (1.0, 30.0)
# Errors that end when the connection is back; anything else ZooKeeper says is a refusal.
_TRANSIENT = (ConnectionLoss, SessionExpiredError, OperationTimeoutError)


def _backoff(failures: int, window: tuple[float, float] = _RELIST_BACKOFF) -> float:
    low, high = window
    return random.uniform(0, min(high, low * 2 ** min(failures, 32)))


def _relist_delay() -> float:
    return random.uniform(0, RELIST_JITTER)


def _reason(exc: BaseException) -> str:
    """The `reason` a refused read is counted under."""
    if isinstance(exc, NoAuthError):
        return "unreadable"
    if isinstance(exc, KazooException):
        return "refused"
    return "unexpected"


class ZooKeeperRegistry:
    holds_subscriptions = True

    def __init__(self, url: ZooKeeperURL, *, startup_wait: float = 0.5) -> None:
        self.url = url
        self._startup_wait = startup_wait
        self.client = kazoo_client(url, KazooRetry(**_CONNECTION_RETRY))
        self.own_acl = tenant_acl(url)
        self._closed_tenant = self.own_acl is not None
        self.rejections = Rejections()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = asyncio.Event()
        self._registrations: dict[str, Registration] = {}
        # path -> held while one attempt to write or delete its node runs. Kept for the
        # registry's life: a lock dropped while held would let a second one run beside it.
        self._attempts: dict[str, asyncio.Lock] = {}
        self._unplaceable: set[str] = set()
        self._ensuring: set[str] = set()  # paths an _ensure loop is placing now
        self._watches: set[_Watch] = set()
        self._maintenance: asyncio.Task[None] | None = None
        self._was_connected = False
        # applied node path -> (tenant, the document it should hold); the paths to write
        # (or, when no longer wanted, to delete), and the one task that does.
        self._applied: dict[str, tuple[str, bytes]] = {}
        self._applied_due: set[str] = set()
        self._applied_writer: asyncio.Task[None] | None = None
        self._closing = False

    # -- life cycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Begin connecting; returns at once (ZooKeeper may well be down)."""
        self._loop = asyncio.get_running_loop()
        self.client.add_listener(self._kazoo_state_changed)
        self.client.start_async()

    async def close(self) -> None:
        """Stop watching and end the session, which removes its ephemeral nodes."""
        self._closing = True
        for watch in list(self._watches):
            await watch.cancel()
        for task in (self._maintenance, self._applied_writer):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self.client.remove_listener(self._kazoo_state_changed)
        # stop() joins kazoo's threads and closes the session: not on the loop.
        await asyncio.to_thread(self.client.stop)
        await asyncio.to_thread(self.client.close)

    @property
    def connected(self) -> bool:
        """Whether ZooKeeper answers now (else watchers keep their last good view)."""
        return self._connected.is_set()

    @property
    def session_id(self) -> int | None:
        client_id = self.client.client_id
        return client_id[0] if client_id else None

    async def wait_connected(self) -> None:
        await self._connected.wait()

    def _kazoo_state_changed(self, state: str) -> None:
        # kazoo thread: hop to the loop and return at once.
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._on_state, state)

    def _on_state(self, state: str) -> None:
        if state == KazooState.CONNECTED:
            logger.info("ZooKeeper connected (session 0x%x)", self.session_id or 0)
            self._connected.set()
            reconnected, self._was_connected = self._was_connected, True
            for watch in self._watches:
                if reconnected:
                    watch.relist_after_reconnection()
                else:
                    watch.relist_all()
            self._restart_maintenance()
            self._applied_due.update(self._applied)  # a new session has none of them
            self._write_applied_soon()
        else:
            logger.warning("ZooKeeper connection %s", state.lower())
            self._connected.clear()

    def _restart_maintenance(self) -> None:
        if self._maintenance is not None:
            self._maintenance.cancel()
        if self._registrations:
            self._maintenance = asyncio.create_task(self._ensure_all())

    async def _ensure_all(self) -> None:
        for registration in list(self._registrations.values()):
            if registration.path in self._ensuring:
                continue  # register() is still placing it: a second loop would double its tries
            try:
                await self._ensure(registration)
            except (KazooException, RegistryError) as exc:
                # The next reconnection runs this again.
                logger.warning("could not re-register %s: %r", registration.path, exc)

    # -- requests -----------------------------------------------------------------

    def call(self, request: Any) -> Awaitable[Any]:
        """Turn a kazoo IAsyncResult into an asyncio future resolved on the loop."""
        loop = self._loop
        assert loop is not None, "start() first"
        future: asyncio.Future[Any] = loop.create_future()

        def settle(result: Any) -> None:
            if future.done():
                return
            if result.successful():
                future.set_result(result.value)
            else:
                future.set_exception(result.exception)

        request.rawlink(lambda result: loop.call_soon_threadsafe(settle, result))
        return future

    # -- registration -------------------------------------------------------------

    async def register(self, registration: Registration) -> None:
        self._registrations[registration.path] = registration
        await self._ensure(registration)

    async def deregister(self, registration: Registration) -> None:
        path = registration.path
        self._registrations.pop(path, None)
        self._unplaceable.discard(path)
        # An attempt in flight may be creating the node right now: let it end first.
        async with self._attempt_lock(path):
            if not self._connected.is_set():
                return  # the session's end removes the ephemeral node
            await self._delete_own(path)

    async def _delete_own(self, path: str) -> None:
        """Delete the ephemeral node at `path` if this session owns it."""
        try:
            _, stat = await self.call(self.client.get_async(path))
            if stat.ephemeralOwner == self.session_id:
                await self.call(self.client.delete_async(path, stat.version))
        except NoNodeError:
            pass

    def _attempt_lock(self, path: str) -> asyncio.Lock:
        return self._attempts.setdefault(path, asyncio.Lock())

    def _wanted(self, registration: Registration) -> bool:
        return self._registrations.get(registration.path) is registration

    async def _ensure(self, registration: Registration) -> None:
        """Make the znode exist, hold our data, and belong to our current session, for
        as long as the registration is wanted.

        Waits through connection losses, and backs off while the node cannot be placed
        (another session keeps re-creating it, say); raises RegistryError when ZooKeeper
        refuses, or when a node above it belongs to another identity.
        """
        path = registration.path
        self._ensuring.add(path)
        try:
            await self._ensure_placed(registration)
        finally:
            self._ensuring.discard(path)

    async def _ensure_placed(self, registration: Registration) -> None:
        path = registration.path
        failures = 0
        while True:
            await self._connected.wait()
            try:
                async with self._attempt_lock(path):
                    if not self._wanted(registration):
                        return
                    blocked = await self._attempt(registration)
            except _TRANSIENT as exc:
                failures += 1
                logger.info("registering %s interrupted (%r); will retry", path, exc)
                await asyncio.sleep(_backoff(failures))
                continue
            except KazooException as exc:
                message = f"ZooKeeper refused to register {path}: {exc!r}"
                raise RegistryError(message) from exc
            if blocked is None:
                self._unplaceable.discard(path)
                return
            failures += 1
            if path not in self._unplaceable:  # told once, however many attempts wait on it
                self._unplaceable.add(path)
                logger.warning("cannot place %s yet (%s); retrying with back-off", path, blocked)
            await asyncio.sleep(_backoff(failures, _REFUSED_BACKOFF))

    async def _attempt(self, registration: Registration) -> str | None:
        """One try at placing the node; None when done, else why it could not be."""
        await self._check_placeable(registration.key.tenant, registration.path)
        return await self._ensure_once(registration.path, registration.instance.to_json())

    async def _check_placeable(self, tenant: str, path: str) -> None:
        """For a tenant with credentials: make the shared parents, and RegistryError
        when a node above `path` is another identity's."""
        if self._closed_tenant:
            # makepath would give them the tenant's ACL and lock other tenants out.
            await ensure_shared_parents_async(self.call, self.client)
            await self._check_ancestors_owned(tenant, path)

    async def _check_ancestors_owned(self, tenant: str, path: str) -> None:
        """RegistryError when a node between the tenant's and `path` exists with an ACL
        that is not exactly the tenant's: another identity made it first."""
        ancestors = tenant_ancestors(tenant, path)
        found = await asyncio.gather(
            *(self.call(self.client.get_acls_async(node)) for node in ancestors),
            return_exceptions=True,
        )
        for ancestor, result in zip(ancestors, found, strict=True):
            if isinstance(result, NoNodeError):
                return  # it and the rest will be made with the tenant's ACL
            if isinstance(result, NoAuthError):
                message = f"refusing to register under {ancestor}: another identity owns it"
                raise RegistryError(message)
            if isinstance(result, BaseException):
                raise result
            acls: list[ACL] = result[0]
            if not is_own_acl(acls, self.own_acl):
                raise RegistryError(
                    f"refusing to register under {ancestor}: its ACL {describe_acls(acls)} "
                    "is not the tenant's own"
                )

    async def _create(self, path: str, data: bytes) -> None:
        """Create the ephemeral node, and its parents if missing. Not kazoo's makepath:
        it sends the create after the parents by itself, even once this attempt was
        cancelled and its lock released; here every request is one await."""
        create = functools.partial(self.client.create_async, path, data, ephemeral=True)
        try:
            await self.call(create())
        except NoNodeError:
            await self.call(self.client.ensure_path_async(path.rsplit("/", 1)[0]))
            await self.call(create())

    async def _ensure_once(self, path: str, data: bytes, done: str = "registered") -> str | None:
        """One attempt; None when placed, else why the node must be tried again."""
        try:
            await self._create(path, data)
            logger.info("%s %s", done, path)
            return None
        except NodeExistsError:
            pass
        try:
            current, stat = await self.call(self.client.get_async(path))
        except NoNodeError:
            return "it vanished while being read"
        if stat.ephemeralOwner == self.session_id:
            if current != data:
                await self.call(self.client.set_async(path, data, stat.version))
            return None
        # A node left by an older session: replace it atomically.
        transaction = self.client.transaction()
        transaction.delete(path, stat.version)
        transaction.create(path, data, ephemeral=True)
        results = await self.call(transaction.commit_async())
        errors = [result for result in results if isinstance(result, Exception)]
        if errors:
            return f"replacing the node of session 0x{stat.ephemeralOwner:x} failed: {errors!r}"
        logger.info("replaced stale node of session 0x%x at %s", stat.ephemeralOwner, path)
        return None

    # -- applied rules ------------------------------------------------------------

    def report_applied(
        self, tenant: str, service: str, kind: str, process: str, document: bytes | None
    ) -> None:
        """Keep `document` in the ephemeral node `applied/<kind>/<process>`, or remove it
        (None); written in the background (see the top)."""
        if self._closing:
            return  # the session's end removes them all
        path = f"{applied_path(tenant, service, kind)}/{process}"
        if document is None:
            self._applied.pop(path, None)
        else:
            self._applied[path] = (tenant, document)
        self._applied_due.add(path)
        self._write_applied_soon()

    def _write_applied_soon(self) -> None:
        writer = self._applied_writer
        if self._applied_due and (writer is None or writer.done()):
            self._applied_writer = asyncio.create_task(self._write_applied(), name="csf-applied")

    async def _write_applied(self) -> None:
        """Bring each due node to what is wanted of it now, one node at a time: reports
        that came meanwhile are folded into one write."""
        failures = 0
        while self._applied_due:
            await self._connected.wait()
            path = self._applied_due.pop()
            try:
                blocked = await self._place_applied(path)
            except _TRANSIENT as exc:
                blocked = repr(exc)
            except Exception as exc:  # refused: the next (re)connection tries again
                logger.warning("cannot record %s: %r", path, exc)
                continue
            if blocked is None:
                failures = 0
                continue
            self._applied_due.add(path)
            failures += 1
            logger.info("recording %s interrupted (%s); will retry", path, blocked)
            await asyncio.sleep(_backoff(failures))

    async def _place_applied(self, path: str) -> str | None:
        """One try at making the node hold what is wanted (or be gone); None when done,
        else why it must be tried again."""
        wanted = self._applied.get(path)
        if wanted is None:
            await self._delete_own(path)
            return None
        tenant, document = wanted
        await self._check_placeable(tenant, path)
        return await self._ensure_once(path, document, done="recorded")

    # -- subscription -------------------------------------------------------------

    def subscribe(self, key: ServiceKey, listener: ProviderListener) -> Subscription:
        watch = _ProviderWatch(self, key, listener, self._startup_wait)
        self._watches.add(watch)
        return watch

    def subscribe_rule(
        self, tenant: str, service: str, kind: str, listener: RuleListener
    ) -> Subscription:
        watch = _RuleWatch(self, rule_path(tenant, service, kind), listener)
        self._watches.add(watch)
        return watch

    def subscribe_subscribers(
        self, tenant: str, service: str, listener: SubscribersListener
    ) -> Subscription:
        """Deliver the apps subscribed to a service now and on every change."""
        watch = _ChildrenWatch(self, subscriptions_path(tenant, service), listener)
        self._watches.add(watch)
        return watch

    def subscribe_lifecycle(
        self, tenant: str, service: str, grpc_service: str, listener: LifecycleListener
    ) -> Subscription:
        """Deliver a gRPC service's lifecycle status now and on every change (None while
        it has no descriptor); unreadable data keeps the last good status."""
        path = descriptor_path(tenant, service, grpc_service)
        watch = _LifecycleWatch(self, path, listener)
        self._watches.add(watch)
        return watch

    def subscribe_descriptors(self, tenant: str, listener: DescriptorsListener) -> Subscription:
        """Deliver every descriptor of the tenant now and after every change (see
        _DescriptorsWatch for what a change costs)."""
        watch = _DescriptorsWatch(self, tenant, listener)
        self._watches.add(watch)
        return watch

    def _forget(self, watch: _Watch) -> None:
        self._watches.discard(watch)


class _Watch(ABC):
    """A task that re-reads one part of ZooKeeper after each watch event or reconnection.

    While the read fails (ZooKeeper away), it retries with jittered back-off and
    delivers nothing, so its listener keeps the last good view. A read ZooKeeper refuses
    (NoAuth, say) is told once and tried again slowly.
    """

    KIND: str  # what it reads, as `csf.registry.rejected` counts it

    def __init__(self, registry: ZooKeeperRegistry, what: str) -> None:
        self._registry = registry
        self._what = what
        self._dirty = asyncio.Event()
        self._dirty.set()
        self._jitter_due = False  # the next read follows a reconnection: spread it
        self._loop = asyncio.get_running_loop()
        self._watcher: Callable[[WatchedEvent], None] = self._kazoo_event
        self._task = asyncio.create_task(self._run(), name=f"csf-watch {what}")

    async def cancel(self) -> None:
        self._registry._forget(self)
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    def relist_all(self) -> None:
        self._dirty.set()

    def relist_after_reconnection(self) -> None:
        self._jitter_due = True
        self.relist_all()

    def _kazoo_event(self, event: WatchedEvent) -> None:
        self._loop.call_soon_threadsafe(self._on_event, event)

    def _on_event(self, event: WatchedEvent) -> None:
        self._dirty.set()

    async def _run(self) -> None:
        failures = 0
        while True:
            await self._dirty.wait()
            await self._registry.wait_connected()
            if self._jitter_due:
                self._jitter_due = False
                await asyncio.sleep(_relist_delay())
            self._dirty.clear()
            try:
                await self._read_and_deliver()
            except _TRANSIENT as exc:
                failures += 1
                logger.info("reading %s interrupted (%r); will retry", self._what, exc)
                await asyncio.sleep(_backoff(failures))
                self._dirty.set()
                continue
            except Exception as exc:
                # Keep the last view and the watch alive, whatever went wrong.
                failures += 1
                self._tell_refused_read(exc)
                await asyncio.sleep(_backoff(failures, _REFUSED_BACKOFF))
                self._dirty.set()
                continue
            if failures:
                self._registry.rejections.forget(("read", self._what))
            failures = 0

    def _tell_refused_read(self, exc: Exception) -> None:
        message = f"reading {self._what} failed ({exc!r}); keeping the last view, will retry"
        item = ("read", self._what)
        reason = _reason(exc)
        bug = exc if reason == "unexpected" else None
        self._registry.rejections.refuse(self.KIND, reason, item, repr(exc), message, bug=bug)

    @abstractmethod
    async def _read_and_deliver(self) -> None: ...

    async def _read_watched(self, path: str, request: Callable[[str, Any], Any]) -> Any:
        """`request(path, watcher)`'s result, or None while the node does not exist: an
        exists-watch then fires when it is created (read again if it already was)."""
        call = self._registry.call
        while True:
            try:
                return await call(request(path, self._watcher))
            except NoNodeError:
                exists = self._registry.client.exists_async(path, self._watcher)
                if await call(exists) is None:
                    return None


class _RuleWatch(_Watch):
    """Delivers the bytes and version of one rule node, or (None, -1) while it does not
    exist."""

    KIND = "rule"

    def __init__(self, registry: ZooKeeperRegistry, path: str, listener: RuleListener) -> None:
        self._path = path
        self._listener = listener
        super().__init__(registry, path)

    async def _read_and_deliver(self) -> None:
        found = await self._read_watched(self._path, self._registry.client.get_async)
        if found is None:
            self._listener(None, -1)
        else:
            data, stat = found
            self._listener(bytes(data), stat.version)


class _LifecycleWatch(_RuleWatch):
    """Delivers the status in one descriptor node, or None while it does not exist."""

    KIND = "lifecycle"

    def __init__(self, registry: ZooKeeperRegistry, path: str, listener: LifecycleListener):
        self._deliver_status = listener
        super().__init__(registry, path, self._on_data)

    def _on_data(self, data: bytes | None, version: int) -> None:
        if data is None:
            self._deliver_status(None)
            return
        try:
            status = parse_status(data)
        except Exception as exc:
            expected = isinstance(exc, LifecycleFormatError)
            reason, bug = ("format", None) if expected else ("unexpected", exc)
            message = f"descriptor at {self._path} ignored ({exc}); last good status kept"
            rejections = self._registry.rejections
            rejections.refuse(self.KIND, reason, self._path, data, message, bug=bug)
            return
        self._registry.rejections.forget(self._path)
        self._deliver_status(status)


class _ChildrenWatch(_Watch):
    """Delivers the child names of one node (none while it does not exist)."""

    KIND = "subscription"

    def __init__(
        self,
        registry: ZooKeeperRegistry,
        path: str,
        listener: SubscribersListener,
    ) -> None:
        self._path = path
        self._listener = listener
        super().__init__(registry, path)

    async def _read_and_deliver(self) -> None:
        client = self._registry.client
        names = await self._read_watched(self._path, client.get_children_async)
        self._listener(frozenset(names or ()))


class _ProviderWatch(_Watch):
    """Keeps one listener told of the full provider list of one service cluster.

    A child event re-lists only the node it fired on (the cluster node, or one group),
    and a data event re-reads only that instance: each change costs one or two reads,
    however many groups and instances the cluster holds.

    An instance that cannot be read or parsed, or (for a tenant with credentials) whose
    ACL is not the tenant's, is skipped alone: told once per version, left out (or kept
    at its last good data), and read again only when it changes. One ZooKeeper refuses
    to read (NoAuth) is also read again on a slow timer: an ACL change fires no watch.
    """

    KIND = "instance"

    def __init__(
        self,
        registry: ZooKeeperRegistry,
        key: ServiceKey,
        listener: ProviderListener,
        startup_wait: float,
    ) -> None:
        self._key = key
        self._listener = listener
        self._startup_wait = startup_wait
        self._root = cluster_path(key.tenant, key.service, key.cluster)
        # group path -> its last listing; the cluster and group nodes to list again.
        self._groups: dict[str, list[str]] = {}
        self._stale: set[str] = {self._root}
        # path -> last good instance there; paths whose data failed to parse or changed.
        self._instances: dict[str, Instance] = {}
        self._malformed: set[str] = set()
        self._changed: set[str] = set()
        # Instance and group paths ZooKeeper refused to read, and the timer that reads
        # them again.
        self._unreadable: set[str] = set()
        self._unreadable_groups: set[str] = set()
        self._rereads = 0
        self._reread: asyncio.TimerHandle | None = None
        super().__init__(registry, self._root)

    async def cancel(self) -> None:
        if self._reread is not None:
            self._reread.cancel()
        await super().cancel()

    def relist_all(self) -> None:
        """Forget every cached read; the next listing fetches all again."""
        self._stale.add(self._root)
        self._stale.update(self._groups)
        self._changed.update(self._instances)
        self._malformed.clear()
        self._dirty.set()

    def _on_event(self, event: WatchedEvent) -> None:
        path = event.path
        if not path:
            self.relist_all()
            return
        if event.type == EventType.CHANGED:
            self._changed.add(path)
        elif path == self._root or path in self._groups:
            self._stale.add(path)
            if event.type != EventType.CHILD:
                self._stale.add(self._root)  # a group or the cluster came or went
        else:
            self._stale.add(path.rsplit("/", 1)[0])
        self._dirty.set()

    async def _run(self) -> None:
        try:
            async with asyncio.timeout(self._startup_wait):
                await self._registry.wait_connected()
        except TimeoutError:
            self._listener.on_unavailable()
        await super()._run()

    async def _read_and_deliver(self) -> None:
        stale, self._stale = self._stale, set()
        changed, self._changed = self._changed, set()
        rereading_only = (
            bool(stale or changed)
            and stale <= self._unreadable_groups
            and changed <= self._unreadable
        )
        try:
            instances = await self._list(stale, changed)
        except BaseException:
            self._stale |= stale  # read again next time
            self._changed |= changed
            raise
        self._schedule_reread()
        if rereading_only and stale <= self._unreadable_groups and changed <= self._unreadable:
            return  # still unreadable, all of them: nothing new to tell
        self._listener.on_providers(instances)

    def _schedule_reread(self) -> None:
        """Read the unreadable nodes again later, slower and slower while they stay so."""
        if not self._unreadable and not self._unreadable_groups:
            self._rereads = 0
            if self._reread is not None:
                self._reread.cancel()
                self._reread = None
        elif self._reread is None:
            delay = _backoff(self._rereads, _REFUSED_BACKOFF)
            self._rereads += 1
            self._reread = self._loop.call_later(delay, self._read_unreadable_again)

    def _read_unreadable_again(self) -> None:
        self._reread = None
        self._changed.update(self._unreadable)
        self._stale.update(self._unreadable_groups)
        self._dirty.set()

    async def _list(self, stale: set[str], changed: set[str]) -> Sequence[Instance]:
        groups = set(self._groups)
        if self._root in stale:
            names = await self._list_groups()
            if names is None:
                return []
            groups = {f"{self._root}/{name}" for name in names}
            for gone in set(self._groups).difference(groups):
                del self._groups[gone]
            self._unreadable_groups.intersection_update(groups)
            stale.update(groups.difference(self._groups))
        relisted = list(stale & groups)
        listings = await asyncio.gather(*(self._children(path) for path in relisted))
        for group, names in zip(relisted, listings, strict=True):
            if names is None:
                self._groups.pop(group, None)
            else:
                self._groups[group] = names
        paths = {f"{group}/{name}" for group, names in self._groups.items() for name in names}
        for gone in set(self._instances).difference(paths):
            del self._instances[gone]
        self._unreadable.intersection_update(paths)
        for gone in self._malformed.difference(paths):
            self._registry.rejections.forget(gone)
        self._malformed.intersection_update(paths)
        unknown = [
            p
            for p in paths
            if p in changed or (p not in self._instances and p not in self._malformed)
        ]
        fetched = await asyncio.gather(*(self._fetch(path) for path in unknown))
        for path, found in zip(unknown, fetched, strict=True):
            if found is not None:
                self._parse(path, *found)
        return list(self._instances.values())

    async def _list_groups(self) -> list[str] | None:
        """The cluster's groups; None while the cluster node does not exist."""
        groups: list[str] | None = await self._read_watched(
            self._root, self._registry.client.get_children_async
        )
        if groups is None:
            self._groups.clear()
        return groups

    async def _children(self, path: str) -> list[str] | None:
        """A group's instance names; None when it is gone. A group ZooKeeper refuses to
        list (another identity's node) keeps its last listing, is told once and read
        again with the unreadable instances: it never stops the others being listed."""
        registry = self._registry
        try:
            names: list[str] = await registry.call(
                registry.client.get_children_async(path, self._watcher)
            )
        except NoNodeError:
            self._unreadable_groups.discard(path)
            return None
        except _TRANSIENT:
            raise
        except KazooException as exc:
            self._unreadable_groups.add(path)
            message = f"cannot list group {path}: {exc!r}"
            registry.rejections.refuse("instance", _reason(exc), path, "unreadable", message)
            await registry.call(registry.client.exists_async(path, self._watcher))
            return self._groups.get(path, [])
        if path in self._unreadable_groups:
            self._unreadable_groups.discard(path)
            registry.rejections.forget(path)
        return names

    async def _fetch(self, path: str) -> tuple[bytes, Hashable] | None:
        """An instance node's data and version; None when it is gone, or skipped."""
        registry = self._registry
        try:
            data, stat = await registry.call(registry.client.get_async(path, self._watcher))
            if registry.own_acl is not None:
                acls, stat = await registry.call(registry.client.get_acls_async(path))
        except NoNodeError:
            self._unreadable.discard(path)
            return None
        except _TRANSIENT:
            raise
        except KazooException as exc:
            self._unreadable.add(path)
            self._skip(path, _reason(exc), "unreadable", f"cannot read {path}: {exc!r}")
            # The refused read left no watch; this one hears the node change or go.
            await registry.call(registry.client.exists_async(path, self._watcher))
            return None
        self._unreadable.discard(path)
        version = (stat.mzxid, stat.aversion)
        if registry.own_acl is not None and not is_own_acl(acls, registry.own_acl):
            message = f"ignoring {path}: its ACL {describe_acls(acls)} is not the tenant's own"
            self._skip(path, "foreign_acl", version, message)
            return None
        return bytes(data or b""), version

    def _parse(self, path: str, data: bytes, version: Hashable) -> None:
        group, address = path.rsplit("/", 2)[-2:]
        try:
            instance = Instance.from_json(data)
            if instance.address != address or instance.group != group:
                raise InstanceFormatError(
                    f"says {instance.group}/{instance.address}, path says {group}/{address}"
                )
        except Exception as exc:  # whatever one node holds, only that node is skipped
            expected = isinstance(exc, InstanceFormatError)
            message = f"skipping malformed instance at {path}: {exc if expected else repr(exc)}"
            reason, bug = ("format", None) if expected else ("unexpected", exc)
            self._skip(path, reason, version, message, bug)
            return
        self._malformed.discard(path)
        self._registry.rejections.forget(path)
        self._instances[path] = instance

    def _skip(
        self,
        path: str,
        reason: str,
        version: Hashable,
        message: str,
        bug: BaseException | None = None,
    ) -> None:
        """Leave `path` out until it changes (its last good data, if any, stays)."""
        self._malformed.add(path)
        if path in self._instances:
            message += " (keeping its last good data)"
        self._registry.rejections.refuse(self.KIND, reason, path, version, message, bug=bug)


class _DescriptorsWatch(_Watch):
    """Keeps one listener told of every descriptor node of a tenant, as bytes.

    It watches three levels: the tenant's children (service codes; names starting with
    `_` are CSF's own, skipped), each code's `services` children, and each descriptor's
    data. A child event re-lists only the node it fired on and a data event re-reads only
    that descriptor, so a change costs the reads of what changed, not of 2,000
    descriptors. After a reconnection each held descriptor is checked with `exists`
    (which sets its watch again) and read again only when its version moved.

    At most MAX_DESCRIPTORS are held: past it, those held already come first, then by
    path; the rest are not read, and that is told once. A descriptor ZooKeeper refuses
    to read, or (for a tenant with credentials) whose ACL is not the tenant's, is left
    out alone, told once per version, and read again when it or its parent's listing
    changes, and after a reconnection (no timer: ZooKeeper tells no ACL change).
    """

    KIND = "descriptor"

    def __init__(
        self, registry: ZooKeeperRegistry, tenant: str, listener: DescriptorsListener
    ) -> None:
        self._root = tenant_path(tenant)
        self._listener = listener
        # `services` node of each listed code -> its last listing ([] while it is absent).
        self._listings: dict[str, list[str]] = {}
        # descriptor path -> its bytes and version; paths left out until they change.
        self._held: dict[str, tuple[bytes, Hashable]] = {}
        self._skipped: set[str] = set()
        # Nodes to list again, descriptors to read again, held ones to check.
        self._stale: set[str] = {self._root}
        self._changed: set[str] = set()
        self._unverified: set[str] = set()
        self._delivered: dict[tuple[str, str], bytes] | None = None
        super().__init__(registry, self._root)

    def relist_all(self) -> None:
        """List every node again and check every held descriptor's version."""
        self._stale.add(self._root)
        self._stale.update(self._listings)
        self._unverified.update(self._held)
        self._changed.update(self._skipped)
        self._dirty.set()

    def _on_event(self, event: WatchedEvent) -> None:
        path = event.path
        if not path:
            self.relist_all()
            return
        if path.count("/") - self._root.count("/") < 3:
            self._stale.add(path)  # the tenant or a `services` node
        else:
            # Read again even when deleted: a node made again at once lists as before.
            self._changed.add(path)
            if event.type == EventType.DELETED:
                self._stale.add(path.rsplit("/", 1)[0])
        self._dirty.set()

    async def _read_and_deliver(self) -> None:
        stale, self._stale = self._stale, set()
        changed, self._changed = self._changed, set()
        unverified, self._unverified = self._unverified, set()
        try:
            await self._refresh(stale, changed, unverified)
        except BaseException:
            self._stale |= stale  # read again next time
            self._changed |= changed
            self._unverified |= unverified
            raise
        view = {self._key(path): data for path, (data, _) in self._held.items()}
        if view != self._delivered:
            self._listener(MappingProxyType(view))
            self._delivered = view  # only once heard: a listener that failed hears it again

    def _key(self, path: str) -> tuple[str, str]:
        code, _, grpc_service = path[len(self._root) + 1 :].split("/", 2)
        return code, grpc_service

    async def _refresh(self, stale: set[str], changed: set[str], unverified: set[str]) -> None:
        if self._root in stale:
            await self._list_codes(stale)
        relisted = [path for path in stale if path in self._listings]
        listings = await asyncio.gather(*(self._list_services(path) for path in relisted))
        self._listings.update(zip(relisted, listings, strict=True))
        listed = self._bounded(
            [f"{node}/{name}" for node, names in self._listings.items() for name in names]
        )
        for gone in set(self._held).difference(listed):
            del self._held[gone]
        for gone in self._skipped.difference(listed):
            self._registry.rejections.forget(gone)
        self._skipped.intersection_update(listed)
        # ZooKeeper (3.8) tells no event of a node this session may not read: a skipped
        # one is read again whenever its parent is listed (made again, it may be readable).
        again = {p for p in self._skipped if p.rsplit("/", 1)[0] in stale}
        fresh = {p for p in listed if p not in self._held and p not in self._skipped}
        unread = fresh | (changed | again).intersection(listed)
        checked = list(unverified.intersection(self._held).difference(unread))
        versions = await asyncio.gather(*(self._version(path) for path in checked))
        unread.update(p for p, v in zip(checked, versions, strict=True) if v != self._held[p][1])
        reads = list(unread)
        fetched = await asyncio.gather(*(self._fetch(path) for path in reads))
        for path, found in zip(reads, fetched, strict=True):
            if found is None:
                self._held.pop(path, None)
            else:
                self._held[path] = found

    async def _list_codes(self, stale: set[str]) -> None:
        client = self._registry.client
        codes = await self._read_watched(self._root, client.get_children_async)
        nodes = {f"{self._root}/{code}/services" for code in codes or () if code[:1] != "_"}
        for gone in set(self._listings).difference(nodes):
            del self._listings[gone]
        for new in nodes.difference(self._listings):
            self._listings[new] = []
            stale.add(new)

    async def _list_services(self, node: str) -> list[str]:
        """A code's gRPC services ([] without a `services` node). One ZooKeeper refuses
        to list keeps its last listing, told once: it never stops the other codes."""
        registry = self._registry
        try:
            names = await self._read_watched(node, registry.client.get_children_async)
        except _TRANSIENT:
            raise
        except KazooException as exc:
            message = f"cannot list {node}: {exc!r}; keeping its last listing"
            registry.rejections.refuse(self.KIND, _reason(exc), node, "unreadable", message)
            return self._listings.get(node, [])
        registry.rejections.forget(node)
        return list(names or ())

    def _bounded(self, paths: list[str]) -> set[str]:
        """The descriptors to hold: all of them, or MAX_DESCRIPTORS (see the top)."""
        rejections, item = self._registry.rejections, ("too many descriptors", self._root)
        if len(paths) <= MAX_DESCRIPTORS:
            rejections.forget(item)
            return set(paths)
        message = (
            f"{self._root} holds {len(paths):,} descriptors, over the {MAX_DESCRIPTORS:,} "
            f"a watch keeps; leaving out {len(paths) - MAX_DESCRIPTORS:,}"
        )
        rejections.refuse(self.KIND, "too_many", item, "over", message)
        order = sorted(paths, key=lambda path: (path not in self._held, path))
        return set(order[:MAX_DESCRIPTORS])

    async def _version(self, path: str) -> Hashable:
        """A held descriptor's version now (None when gone), setting its watch again."""
        registry = self._registry
        stat = await registry.call(registry.client.exists_async(path, self._watcher))
        return None if stat is None else (stat.mzxid, stat.aversion)

    async def _fetch(self, path: str) -> tuple[bytes, Hashable] | None:
        """A descriptor's bytes and version; None when it is gone, or left out."""
        registry = self._registry
        client = registry.client
        try:
            data, stat = await registry.call(client.get_async(path, self._watcher))
            if registry.own_acl is not None:
                acls, stat = await registry.call(client.get_acls_async(path))
        except NoNodeError:
            return None  # gone between listing and reading: its parent's watch fires
        except _TRANSIENT:
            raise
        except KazooException as exc:
            message = f"cannot read descriptor {path}: {exc!r}"
            self._skip(path, _reason(exc), "unreadable", message)
            return None
        version = (stat.mzxid, stat.aversion)
        if registry.own_acl is not None and not is_own_acl(acls, registry.own_acl):
            message = f"ignoring {path}: its ACL {describe_acls(acls)} is not the tenant's own"
            self._skip(path, "foreign_acl", version, message)
            return None
        if path in self._skipped:
            self._skipped.discard(path)
            registry.rejections.forget(path)
        return bytes(data or b""), version

    def _skip(self, path: str, reason: str, version: Hashable, message: str) -> None:
        """Leave `path` out until it changes."""
        self._skipped.add(path)
        self._registry.rejections.refuse(self.KIND, reason, path, version, message)
