"""The live governance rules of one service, as a consumer holds them.

Each kind is watched under `configs/<kind>`; a valid document replaces the current rule
whole and tells the listeners, an invalid one is refused (the last good rule stays) and
told once (logged and counted through `Rejections`, however often it is read again), and
a deleted (or empty) one restores the defaults (None).

After each reading of a kind it tells the registry what it did with that version of the
rule (applied, or refused and why) as an ephemeral node that the console counts
(csf.registry.applied); closing the rules removes those nodes.

A consumer's rules are also kept on disk (DESIGN section 8): saved after every change
once ZooKeeper gave every kind, and, when ZooKeeper gives none within `startup_wait`,
the saved rules of the kinds still unread count as their first reading.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from csf._quoted import quoted
from csf._rule_snapshot import RuleSnapshot
from csf.config import DEFAULT_STARTUP_WAIT
from csf.registry import Registry, Subscription
from csf.registry.applied import AppliedNodes
from csf.registry.paths import rule_path
from csf.registry.snapshot import SnapshotStore
from csf.rules import PARSERS, Rule, RuleError, WeightRule, parse_rule

logger = logging.getLogger("csf.rules")

RuleT = TypeVar("RuleT")


class ServiceRules:
    def __init__(
        self,
        registry: Registry,
        tenant: str,
        service: str,
        kinds: Iterable[str] = PARSERS,
        *,
        startup_wait: float = DEFAULT_STARTUP_WAIT,
        snapshots: SnapshotStore | None = None,
        role: str = "consumer",
        app: str | None = None,
    ) -> None:
        """`role` ("consumer", "provider", "gateway") and `app` name the holder in the
        applied nodes."""
        self.where = f"{tenant}/{service}"
        self.rejected = 0
        self._rejections = registry.rejections
        self._paths = {kind: rule_path(tenant, service, kind) for kind in kinds}
        self.current: dict[str, Rule | None] = dict.fromkeys(self._paths)
        self._versions: dict[str, int] = dict.fromkeys(self.current, 0)
        self.generation = 0
        """How many times any rule changed: method chains are composed again on a change."""
        self._listeners: defaultdict[str, list[Callable[[], None]]] = defaultdict(list)
        self._unread = set(self.current)
        self._read = asyncio.Event()
        self._waited = False
        self._give_up_at = time.monotonic() + startup_wait
        self._documents: dict[str, bytes] = {}
        """The document of each rule in force (not the defaults), as the snapshot keeps them."""
        self._snapshot = None
        if snapshots is not None:
            self._snapshot = RuleSnapshot(snapshots, tenant, service, lambda: self._documents)
        self.applied = AppliedNodes(registry, tenant, service, role, app)
        self._subscriptions: list[Subscription] = [
            registry.subscribe_rule(tenant, service, kind, functools.partial(self._update, kind))
            for kind in self.current
        ]

    def get(self, kind: type[RuleT]) -> RuleT | None:
        """The current rule of this kind (its class), or None for the defaults."""
        rule = self.current.get(kind.KIND)  # type: ignore[attr-defined]
        return rule if isinstance(rule, kind) else None

    def method_rule(self, kind: type[RuleT], method: str) -> RuleT | None:
        """The current rule of this kind as it applies to `method`."""
        rule: Any = self.get(kind)
        return None if rule is None else rule.for_method(method)

    @property
    def weight(self) -> WeightRule | None:
        return self.get(WeightRule)

    @property
    def ready(self) -> bool:
        """Every kind was read once (or `settle` gave up waiting for that: the kinds
        still unread then start from the snapshot's rules, or the defaults)."""
        return self._waited or self._read.is_set()

    async def settle(self, within: float) -> None:
        """Wait up to `within` seconds for every kind's first reading, so that a consumer's
        first calls obey the rules already in the registry; no longer than `startup_wait`
        after these rules were asked for (then it gives up for good)."""
        if self.ready:
            return
        deadline = time.monotonic() + within
        left = self._give_up_at - time.monotonic()
        try:
            await asyncio.wait_for(self._read.wait(), max(0.0, min(within, left)))
        except TimeoutError:
            if time.monotonic() >= self._give_up_at:
                await self._give_up(deadline - time.monotonic())

    async def _give_up(self, within: float) -> None:
        """ZooKeeper gave no full reading within `startup_wait`: the kinds it has not
        given start from the snapshot's rules, if there are any (else the defaults)."""
        saved = {} if self._snapshot is None else await self._snapshot.loaded(within)
        if self.ready:  # the reading came, or another call gave up, meanwhile
            return
        self._waited = True
        kinds = sorted(self._unread & saved.keys())
        for kind in kinds:
            self._documents[kind] = saved[kind].document
            self._apply(kind, saved[kind].rule)
        if kinds:
            logger.warning(
                "%s: the registry is unreachable; starting from the saved %s rules",
                self.where,
                ", ".join(kinds),
            )

    def version(self, kind: str) -> int:
        """How many times rule `kind` changed: a cheap test of whether to rebuild."""
        return self._versions.get(kind, 0)

    def on_change(self, kind: str, listener: Callable[[], None]) -> Callable[[], None]:
        """Call `listener` (on the event loop) whenever rule `kind` changes; returns the
        function that stops it."""
        listeners = self._listeners[kind]
        listeners.append(listener)
        return lambda: listeners.remove(listener)

    @property
    def listener_count(self) -> int:
        """Listeners registered now, all kinds together (stubs must not leave theirs)."""
        return sum(len(listeners) for listeners in self._listeners.values())

    def _update(self, kind: str, data: bytes | None, version: int) -> None:
        self._unread.discard(kind)
        if not self._unread and not self._read.is_set():
            self._read.set()
            self._save_soon()  # what ZooKeeper holds now replaces an older snapshot
        try:
            # An empty node is a rule being written (created, then set): no rule yet.
            rule = parse_rule(kind, data) if data else None
        except Exception as exc:  # whatever the document holds, the last good rule stays
            self._refuse(kind, data, version, exc)
            return
        if data is None:
            self.applied.removed(kind)
        else:
            self.applied.applied(kind, version)
        self._rejections.forget(self._paths[kind])
        if data:
            self._documents[kind] = data
        else:
            self._documents.pop(kind, None)
        if rule != self.current.get(kind):
            self._apply(kind, rule)
            self._save_soon()

    def _save_soon(self) -> None:
        """Save the rules in force, once ZooKeeper gave every kind (not a mix with what
        the snapshot gave)."""
        if self._snapshot is not None and self._read.is_set():
            self._snapshot.save_soon()

    def _apply(self, kind: str, rule: Rule | None) -> None:
        self.current[kind] = rule
        self._versions[kind] = self._versions.get(kind, 0) + 1
        self.generation += 1
        logger.info("%s: %s rule now %s", self.where, kind, quoted(rule))  # a line, not 16 kB
        for listener in list(self._listeners[kind]):
            try:
                listener()
            except Exception:  # one listener's bug must not keep the rule from the others
                logger.exception("%s: a listener of the %s rule failed", self.where, kind)

    def _refuse(self, kind: str, data: bytes | None, version: int, exc: Exception) -> None:
        expected = isinstance(exc, RuleError)
        why = exc if expected else repr(exc)
        self.applied.refused(kind, version, str(why))
        message = f"{self.where}: rejected {kind} rule: {why}; keeping the last good one"
        reason, bug = ("format", None) if expected else ("unexpected", exc)
        if self._rejections.refuse("rule", reason, self._paths[kind], data, message, bug=bug):
            self.rejected += 1

    async def close(self) -> None:
        for subscription in self._subscriptions:
            await subscription.cancel()
        self.applied.close()
        if self._snapshot is not None:
            await self._snapshot.close()
