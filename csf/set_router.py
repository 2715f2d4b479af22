"""The `set` filter: a SET-ized service's calls stay in the SET their key maps to.

In force while the service has a `set` rule (DESIGN section 8). A call's key, first
found wins: metadata `csf-set-key` or the rule's `key` entry given on the call, the
stub's `set_key(request)`, its `hash_key(request)`, the key inherited from the call the
current handler serves. The key's bucket picks the SET from the rule's table; a call
with no key goes to the consumer's own SET. The filter narrows the router's pool to
that SET's providers; when none of them is usable it goes where `on_empty` says, or
fails with NoProviderError naming the SET and the bucket. The key is sent on in
`csf-set-key`, so the next hop stays in the same SET.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace
from typing import Any

from csf._exceptions import NoProviderError, NoSetKeyError
from csf._invocation import Invocation, Invoker, MethodContext, PickerRef
from csf.set_key import given_on_call
from csf.set_rule import SET_KEY_METADATA, SetName, SetRule

MAX_POOLS = 10_000
"""Candidate lists kept per method (router pools times SETs); past it they are made afresh."""


class SetFilter:
    """Rebuilt on the first call after the `set` or `route` rule changed."""

    __slots__ = ("_base", "_candidates", "_ctx", "_generation", "_home", "_rule", "_set_key")

    def __init__(self, ctx: MethodContext) -> None:
        self._ctx = ctx
        self._base = ctx.directory.pool(ctx.balancer, ctx.selector)
        self._home = None if ctx.home_set is None else SetName.parse("set", ctx.home_set)
        single_request = ctx.kind in ("unary_unary", "unary_stream")
        self._set_key = ctx.set_key if single_request else None
        self._generation = -1
        self._rule: SetRule | None = None
        # The pools a call may go to, by the pool routing chose and the key's SET.
        self._candidates: dict[tuple[PickerRef, SetName], tuple[tuple[PickerRef, str], ...]] = {}

    @property
    def in_force(self) -> bool:
        """True while the service has a `set` rule."""
        return self._current() is not None

    def _current(self) -> SetRule | None:
        rules = self._ctx.rules
        if rules.generation != self._generation:  # a rule changed: maybe `set` or `route`
            self._generation = rules.generation
            self._rule = rules.get(SetRule)
            self._candidates = {}  # old pools go, pickers closed, once no call holds them
        return self._rule

    async def __call__(self, inv: Invocation, next: Invoker, /) -> Any:
        rule = self._current()
        if rule is None:  # the rule went while this chain was in use
            if inv.pool is not None and inv.pool.selector.set is not None:
                inv.pool = None  # a retry is not held to the SET of its first attempt
            return await next(inv)
        key = self._key(rule, inv)
        if key is None:
            if self._home is None:
                raise NoSetKeyError(
                    f"{self._ctx.service} is SET-ized and this call has no SET key: give it "
                    f"metadata {SET_KEY_METADATA!r}"
                    + (f" or {rule.key!r}" if rule.key else "")
                    + ", a set_key or hash_key on the stub, or the Consumer a set="
                )
            bucket, owner = None, self._home
        else:
            bucket, owner = rule.which(key)
            inv.set_key = key
        inv.pool, inv.set_name = await self._destination(rule, inv, owner, bucket)
        return await next(inv)

    def _key(self, rule: SetRule, inv: Invocation) -> str | None:
        given = given_on_call(inv.metadata, rule.key)
        if given is not None:
            return given
        if self._set_key is not None:
            try:
                value = self._set_key(inv.request)
            except Exception as exc:
                raise NoSetKeyError(
                    f"set_key failed for {self._ctx.method_name}: {type(exc).__name__}: {exc}"
                ) from exc
            text = "" if value is None else str(value)
            if text:  # an empty key counts as none
                return text
        if inv.hash_key is not None and str(inv.hash_key):
            return str(inv.hash_key)
        return inv.inherited_set_key

    async def _destination(
        self, rule: SetRule, inv: Invocation, owner: SetName, bucket: int | None
    ) -> tuple[PickerRef, str]:
        """The pool the call goes to and its SET: `owner`'s, else its fallback's."""
        routed = inv.pool or self._base
        candidates = self._candidates.get((routed, owner))
        if candidates is None:
            candidates = self._candidates[routed, owner] = self._in_order(rule, routed, owner)
        directory = self._ctx.directory
        if not directory.listed:  # a first call waits for the first listing, within its deadline
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(directory.wait_listed(), inv.deadline - time.monotonic())
        for pool, set_name in candidates:
            picker = pool.picker
            if picker is not None and any(e.usable for e in picker.endpoints):
                return pool, set_name
        fallback = rule.fallback(owner)
        where = f"bucket {bucket}" if bucket is not None else "no key: the consumer's own SET"
        also = f" nor in its fallback {fallback}" if fallback is not None else ""
        raise NoProviderError(
            f"no usable provider of {directory.key} in SET {owner} ({where}){also}; "
            f"on_empty is {rule.on_empty!r}"
        )

    def _in_order(
        self, rule: SetRule, routed: PickerRef, owner: SetName
    ) -> tuple[tuple[PickerRef, str], ...]:
        """The pools a call routed to `routed` and owned by `owner` may go to, in order:
        the SET's, then its fallback's; in each, the routed group's, then the stub's own."""
        if len(self._candidates) >= MAX_POOLS:
            self._candidates.clear()
        fallback = rule.fallback(owner)
        found: dict[PickerRef, str] = {}
        for set_name in (owner, fallback):
            for base in (routed, self._base):
                if set_name is not None:
                    pool = self._ctx.directory.pool(
                        self._ctx.balancer, replace(base.selector, set=str(set_name))
                    )
                    found.setdefault(pool, str(set_name))
        return tuple(found.items())
