"""The live provider set of one service cluster, as one consumer sees it.

Fed with full lists by the registry, it keeps one Endpoint (and channel) per provider,
rebuilds every pool's Picker when the set or the weights change (never on the call
path), saves each list to disk, and starts from that copy when the registry is
unreachable. An empty list while known providers still answer health checks is not
applied. A pool is the providers a Selector admits, under one balancer. A removed
provider's channel stays open while calls are in flight on it, up to their deadlines.

Effective weights: the `weight` rule's override, else the instance's weight, ramped up
over the provider's warm-up; while any provider warms up, pickers are rebuilt on a timer.

Bounds: a pool lives while a filter holds it (the directory holds it weakly), so the
pools of an old route rule go, pickers closed, once the routers move to the new one.
At most MAX_PROVIDERS endpoints are kept: past it, providers already kept come first.
Providers are one per address: a copy of an address that does not match this consumer's
transport (TLS or not) is left out and never displaces a matching one; of two matching
copies in different groups, the one kept already wins, else the first by group name.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any

from csf._exceptions import NoProviderError
from csf._invocation import (
    ANY_PROVIDER,
    BalancerFactory,
    Invocation,
    Picker,
    PickerRef,
    Selector,
)
from csf.bounds import MAX_PROVIDERS
from csf.endpoint import Endpoint
from csf.lb.warmup import warmed_weight, warming_left
from csf.registry import Instance, Registry, ServiceKey
from csf.registry.snapshot import SnapshotStore
from csf.rule_set import ServiceRules
from csf.tls import TLSConfig

logger = logging.getLogger("csf.directory")

# How often providers kept through an empty push are asked whether they still serve.
EMPTY_PUSH_PROBE_INTERVAL = 2.0
# Snapshots matter only at the next start: after a save, at most one more a second.
SNAPSHOT_INTERVAL = 1.0
# While providers warm up, weights are recomputed this often (within these bounds).
WARMUP_STEPS = 20
WARMUP_REBUILD_BOUNDS = (0.5, 5.0)
# Addresses named in one warning about providers left out; the count says the rest.
LOGGED_ADDRESSES = 5

PoolKey = tuple[BalancerFactory, Selector]


class _Pool(PickerRef):
    """A pool as filters hold it: the directory holds it only weakly."""

    __slots__ = ("__weakref__",)


class _Held:
    """A pool as the directory holds it: weakly, with its picker, to close once it is gone."""

    __slots__ = ("picker", "pool")

    def __init__(self, pool: weakref.ref[_Pool], picker: Picker | None) -> None:
        self.pool = pool
        self.picker = picker


class Directory:
    def __init__(
        self,
        key: ServiceKey,
        registry: Registry,
        snapshots: SnapshotStore | None,
        rules: ServiceRules,
        tls: TLSConfig | None = None,
    ) -> None:
        self.key = key
        self.endpoints: dict[str, Endpoint] = {}
        self._tls = tls
        self._refused: set[str] = set()  # listed addresses whose transport is not ours
        self.empty_pushes_ignored = 0
        self.providers_over_cap = 0
        """How many providers the last listing had past MAX_PROVIDERS, left out."""
        self.conflicting_copies = 0
        """Copies of a listed address in another group, left out (counted once each)."""
        self._conflicts: set[tuple[str, str]] = set()  # in the last listing
        self._snapshots = snapshots
        self._rules = rules
        self._pools: dict[PoolKey, _Held] = {}
        self._gone: list[PoolKey] = []  # pools no filter holds any more, to drop
        # The endpoints by address, and by group, as of the last rebuild.
        self._listing: tuple[Endpoint, ...] = ()
        self._by_group: dict[str, list[Endpoint]] = {}
        self._warmup_timer: asyncio.TimerHandle | None = None
        self._listed = asyncio.Event()
        self._unreachable = False
        self._from_registry = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._retiring: set[asyncio.Task[None]] = set()
        self._probe_task: asyncio.Task[None] | None = None
        self._save_wanted = False
        self._save_task: asyncio.Task[None] | None = None
        self._subscription = registry.subscribe(key, self)
        self._unwatch_weight = rules.on_change("weight", self._rebuild)

    # -- what the call path uses ----------------------------------------------------

    def pool(self, factory: BalancerFactory, selector: Selector = ANY_PROVIDER) -> PickerRef:
        """The picker over the providers `selector` admits, kept current while held."""
        self._drop_gone()
        key = (factory, selector)
        held = self._pools.get(key)
        pool = held.pool() if held is not None else None
        if pool is None:
            if held is not None and held.picker is not None:  # gone since _drop_gone
                held.picker.close()
            pool = _Pool(selector)
            if self._listed.is_set():
                pool.picker = factory(_admitted(selector, self._listing, self._by_group))
            self._pools[key] = _Held(weakref.ref(pool, self._on_gone(key)), pool.picker)
        return pool

    async def pick(self, ref: PickerRef, inv: Invocation) -> Endpoint:
        """Pick with `ref`, first waiting (within the call's deadline) for the first listing."""
        if not self._listed.is_set():
            try:
                await asyncio.wait_for(self._listed.wait(), inv.deadline - time.monotonic())
            except TimeoutError:
                raise NoProviderError(self._why_unlisted()) from None
        endpoint = ref.picker.pick(inv) if ref.picker is not None else None
        if endpoint is None:
            raise NoProviderError(self._why_none(ref.selector))
        return endpoint

    def _why_unlisted(self) -> str:
        if self._unreachable:
            return (
                f"no provider list for {self.key}: "
                "the registry cannot be reached and there is no snapshot"
            )
        return f"no provider list for {self.key} arrived within the call's deadline"

    def _why_none(self, selector: Selector) -> str:
        if not self.endpoints:
            refused = f" ({len(self._refused)} left out: TLS mismatch)" if self._refused else ""
            return f"no provider of {self.key} is registered{refused}"
        return f"none of the {len(self.endpoints)} providers of {self.key} matches {selector}"

    @property
    def listed(self) -> bool:
        return self._listed.is_set()

    async def wait_listed(self) -> None:
        """Return once a first provider list (from the registry or a snapshot) is in."""
        await self._listed.wait()

    # -- what the registry calls (ProviderListener) -----------------------------------

    def on_providers(self, instances: Sequence[Instance]) -> None:
        if not instances and self.endpoints:
            self.empty_pushes_ignored += 1
            logger.warning(
                "%s: the registry lists no providers while %d are known; "
                "keeping those that still answer health checks",
                self.key,
                len(self.endpoints),
            )
            if self._probe_task is None:
                self._probe_task = self._spawn(self._probe_kept())
            return
        if self._probe_task is not None:
            self._probe_task.cancel()
            self._probe_task = None
        self._from_registry = True
        self._apply(instances)
        self._save_soon()

    def on_unavailable(self) -> None:
        self._unreachable = True
        if self._snapshots is not None and not self._listed.is_set():
            self._spawn(self._start_from_snapshot(self._snapshots))

    # -- internals ---------------------------------------------------------------------

    def _snapshot(self) -> tuple[Endpoint, ...]:
        return tuple(self.endpoints[address] for address in sorted(self.endpoints))

    def _on_gone(self, key: PoolKey) -> Callable[[weakref.ref[_Pool]], None]:
        # Called by the garbage collector, maybe in another thread: only note the key.
        return lambda _: self._gone.append(key)

    def _drop_gone(self) -> None:
        """Forget the pools no filter holds any more and close their pickers."""
        while self._gone:
            key = self._gone.pop()
            held = self._pools.get(key)
            if held is not None and held.pool() is None:
                del self._pools[key]
                if held.picker is not None:
                    held.picker.close()

    def _apply(self, instances: Sequence[Instance]) -> None:
        wanted = self._wanted(instances)
        removed = [address for address in self.endpoints if address not in wanted]
        for address in removed:
            retiring = self._spawn(self.endpoints.pop(address).retire())
            self._retiring.add(retiring)
            retiring.add_done_callback(self._retiring.discard)
        added: list[str] = []
        for address, instance in wanted.items():
            known = self.endpoints.get(address)
            if known is None:
                self.endpoints[address] = Endpoint(instance, self._tls)
                added.append(address)
            else:
                known.instance = instance
        self._rebuild()
        if (added or removed) and logger.isEnabledFor(logging.INFO):
            logger.info("%s: providers %s (+%s -%s)", self.key, sorted(wanted), added, removed)
        self._listed.set()

    def _wanted(self, instances: Sequence[Instance]) -> dict[str, Instance]:
        """The instances to keep, one per address, at most MAX_PROVIDERS (see the top)."""
        tls = self._tls is not None
        wanted: dict[str, Instance] = {}
        refused: set[str] = set()
        conflicts: set[tuple[str, str]] = set()
        for instance in instances:
            address = instance.address
            # Never plaintext to a TLS provider, nor from a consumer configured with TLS.
            if instance.tls != tls:
                refused.add(address)
                continue
            other = wanted.get(address)
            if other is not None and other.group != instance.group:
                kept = self._first_copy(other, instance)
                conflicts.add((address, (instance if kept is other else other).group))
                if kept is other:
                    continue
            wanted[address] = instance
        self._note_refused(refused - wanted.keys())
        self._note_conflicts(conflicts)
        if len(wanted) <= MAX_PROVIDERS:
            if self.providers_over_cap:
                logger.warning("%s: %d providers listed, all kept again", self.key, len(wanted))
            self.providers_over_cap = 0
            return wanted
        # Providers kept already first, so that a flood of new nodes displaces none.
        order = sorted(wanted, key=lambda address: (address not in self.endpoints, address))
        if not self.providers_over_cap:
            logger.warning(
                "%s: %d providers listed, over the %d a consumer keeps; leaving out %d",
                self.key,
                len(wanted),
                MAX_PROVIDERS,
                len(wanted) - MAX_PROVIDERS,
            )
        self.providers_over_cap = len(wanted) - MAX_PROVIDERS
        return {address: wanted[address] for address in order[:MAX_PROVIDERS]}

    def _first_copy(self, a: Instance, b: Instance) -> Instance:
        """Of two matching copies of one address, the one kept already, else by group."""
        known = self.endpoints.get(a.address)
        if known is not None and known.instance.group in (a.group, b.group):
            return a if known.instance.group == a.group else b
        return min(a, b, key=lambda instance: instance.group)

    def _note_conflicts(self, conflicts: set[tuple[str, str]]) -> None:
        """Warn once of each copy left out; forget those no longer listed."""
        new = sorted(conflicts - self._conflicts)
        self._conflicts = conflicts
        self.conflicting_copies += len(new)
        for address, group in new[:LOGGED_ADDRESSES]:
            logger.warning(
                "%s: leaving out the copy of %s in group %r: that address is listed in "
                "another group too",
                self.key,
                address,
                group,
            )

    def _note_refused(self, refused: set[str]) -> None:
        """Warn once of each address left out for its transport; forget those unlisted."""
        new = sorted(refused - self._refused)
        self._refused = refused
        if not new:
            return
        theirs, ours = ("plaintext", "TLS") if self._tls is not None else ("TLS", "plaintext")
        names = ", ".join(new[:LOGGED_ADDRESSES])
        if len(new) > LOGGED_ADDRESSES:
            names += f" and {len(new) - LOGGED_ADDRESSES} more"
        verb = "it speaks" if len(new) == 1 else "they speak"
        logger.warning(
            "%s: leaving out %s: %s %s, this consumer %s only", self.key, names, verb, theirs, ours
        )

    def _rebuild(self) -> None:
        """Recompute effective weights and rebuild every pool's picker."""
        now = time.time()
        overrides = self._rules.weight.instances if self._rules.weight else {}
        warming: list[float] = []
        snapshot = self._snapshot()
        self._drop_gone()
        for endpoint in snapshot:
            instance = endpoint.instance
            endpoint.weight = warmed_weight(
                instance, overrides.get(endpoint.address, instance.weight), now
            )
            if warming_left(instance, now):
                warming.append(instance.warmup)
        by_group: dict[str, list[Endpoint]] = {}
        for endpoint in snapshot:
            by_group.setdefault(endpoint.instance.group, []).append(endpoint)
        self._listing, self._by_group = snapshot, by_group
        for (factory, selector), held in self._pools.items():
            pool = held.pool()
            if pool is None:
                continue  # gone: its key waits in _gone
            old = held.picker
            pool.picker = held.picker = factory(_admitted(selector, snapshot, by_group))
            if old is not None:
                old.close()
        if self._warmup_timer is not None:
            self._warmup_timer.cancel()
            self._warmup_timer = None
        if warming:
            low, high = WARMUP_REBUILD_BOUNDS
            interval = min(high, max(low, min(warming) / WARMUP_STEPS))
            self._warmup_timer = asyncio.get_running_loop().call_later(interval, self._rebuild)

    async def _start_from_snapshot(self, store: SnapshotStore) -> None:
        try:
            instances = await asyncio.to_thread(store.load, self.key)
        except Exception:  # load logs what it refuses; this is a bug, not bad data
            logger.exception("%s: could not read the snapshot", self.key)
            return
        if instances is None or self._listed.is_set():
            return
        logger.warning(
            "%s: registry unreachable; starting from the snapshot of %d providers",
            self.key,
            len(instances),
        )
        self._apply(instances)

    async def _probe_kept(self) -> None:
        """Drop kept providers once they stop answering; stops on the next non-empty push."""
        while self.endpoints:
            endpoints = list(self.endpoints.values())
            answers = await asyncio.gather(*(endpoint.is_serving() for endpoint in endpoints))
            if not all(answers):
                self._apply([ep.instance for ep, ok in zip(endpoints, answers, strict=True) if ok])
                self._save_soon()
            if self.endpoints:
                await asyncio.sleep(EMPTY_PUSH_PROBE_INTERVAL)
        self._probe_task = None

    def _save_soon(self) -> None:
        """Save the current list in a thread; saves requested meanwhile fold into one."""
        if self._snapshots is None:
            return
        self._save_wanted = True
        if self._save_task is None:
            self._save_task = self._spawn(self._save(self._snapshots))

    async def _save(self, store: SnapshotStore) -> None:
        try:
            while self._save_wanted:
                await self._save_now(store)
                await asyncio.sleep(SNAPSHOT_INTERVAL)
        finally:
            self._save_task = None

    async def _save_now(self, store: SnapshotStore) -> None:
        self._save_wanted = False
        instances = [endpoint.instance for endpoint in self._snapshot()]
        try:
            await asyncio.to_thread(store.save, self.key, instances)
        except (OSError, ValueError) as exc:
            logger.warning("%s: could not save snapshot: %s", self.key, exc)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        self._unwatch_weight()
        await self._subscription.cancel()
        if self._warmup_timer is not None:
            self._warmup_timer.cancel()
        if self._probe_task is not None:
            self._probe_task.cancel()
        if self._save_task is not None:  # it may be waiting out SNAPSHOT_INTERVAL
            self._save_task.cancel()
        for task in self._retiring:  # the consumer is closing: no more waiting for calls
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._save_wanted and self._snapshots is not None:
            await self._save_now(self._snapshots)
        await asyncio.gather(*(endpoint.close() for endpoint in self.endpoints.values()))
        self.endpoints.clear()


def _admitted(
    selector: Selector, snapshot: Sequence[Endpoint], by_group: dict[str, list[Endpoint]]
) -> list[Endpoint]:
    """The endpoints `selector` admits; a group's pool looks only at that group's."""
    candidates: Iterable[Endpoint] = (
        snapshot if selector.group is None else by_group.get(selector.group, ())
    )
    return [endpoint for endpoint in candidates if selector.matches(endpoint.instance)]
