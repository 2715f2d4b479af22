"""The provider's SET re-check (DESIGN section 8), Alibaba unitization's error correction.

With `"verify": true` in the service's `set` rule, a provider that belongs to a SET
refuses, with FAILED_PRECONDITION, a call whose key maps to another SET. The key is the
call's `csf-set-key` metadata, else the rule's `key` entry; a call with no key came from
a consumer of this SET and passes. A key passes when its SET, or that SET's `on_empty`
target, is this provider's SET under the current or the previous rule version: while
buckets move, a consumer still routing by the old table must not be refused.

The other way round, a consumer may read a new version before this provider does (each
hears of it from ZooKeeper on its own). So a key this provider would refuse waits up to
`RULE_LAG` seconds (half the call's time left at most) for the provider's next version
of the rule, and is checked again: only misrouted calls pay for that.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc

from csf._exceptions import REFUSED_BY_KEY
from csf._handlers import OnEntry
from csf._invocation import LiveRules
from csf.set_key import given_on_call
from csf.set_rule import SetName, SetRule

Context = grpc.aio.ServicerContext[Any, Any]

RULE_LAG = 1.0
"""Seconds a refusal waits for a newer rule: ZooKeeper tells every process of a new
version within about a second."""
PREVIOUS_FOR = 10.0
"""Seconds the previous version of the rule still counts after a change: a move in
flight, not a second table for good."""
MAX_WAITING = 100
"""Calls of one method waiting for a newer rule at once; past it they are refused at once
(a consumer with a stale table must not pile up parked handlers)."""


class SetGuard:
    """Provider side: the calls of one method a provider of SET `own` may serve."""

    def __init__(self, method: str, own: SetName, rules: LiveRules) -> None:
        self._method = method
        self._own = own
        self._rules = rules
        self._current: SetRule | None = None
        self._previous: SetRule | None = None
        self._changed = asyncio.Event()
        self._waiting = 0
        self._previous_until = 0.0
        self._reload()
        rules.on_change(SetRule.KIND, self._reload)

    def _reload(self) -> None:
        # A removed rule leaves nothing to verify, and no version to fall back on later.
        self._previous, self._current = self._current, self._rules.get(SetRule)
        self._previous_until = time.monotonic() + PREVIOUS_FOR
        self._changed.set()  # wakes the calls waiting for a newer rule
        self._changed = asyncio.Event()

    @property
    def in_force(self) -> bool:
        return self._current is not None and self._current.verify

    def __call__(self, context: Context) -> OnEntry:
        return OnEntry(self._check, context)

    def _serves(self, rule: SetRule | None, key: str) -> bool:
        if rule is None:
            return False
        owner = rule.which(key)[1]
        return owner == self._own or rule.fallback(owner) == self._own

    def _accepts(self, key: str) -> bool:
        rule = self._current
        if rule is None or not rule.verify:
            return True
        if self._serves(rule, key):
            return True
        return time.monotonic() < self._previous_until and self._serves(self._previous, key)

    async def _check(self, context: Context) -> None:
        rule = self._current
        if rule is None or not rule.verify:  # the rule changed since in_force was read
            return
        key = given_on_call(context.invocation_metadata(), rule.key)
        if key is None or self._accepts(key) or await self._accepted_later(context, key):
            return
        bucket, owner = (self._current or rule).which(key)  # the table after any wait
        await context.abort(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"{self._method}: the call's key is in bucket {bucket} of SET {owner}, "
            f"not of this provider's SET {self._own} (set rule, verify)",
            trailing_metadata=((REFUSED_BY_KEY, "set"),),
        )

    async def _accepted_later(self, context: Context, key: str) -> bool:
        """Whether a version of the rule read within RULE_LAG accepts `key`."""
        if self._waiting >= MAX_WAITING:
            return False
        self._waiting += 1
        try:
            return await self._wait_for_acceptance(context, key)
        finally:
            self._waiting -= 1

    async def _wait_for_acceptance(self, context: Context, key: str) -> bool:
        loop = asyncio.get_running_loop()
        left = context.time_remaining()
        until = loop.time() + (RULE_LAG if left is None else min(RULE_LAG, left / 2))
        while (wait := until - loop.time()) > 0:
            try:
                await asyncio.wait_for(self._changed.wait(), wait)
            except TimeoutError:
                return False
            if self._accepts(key):
                return True
        return False
