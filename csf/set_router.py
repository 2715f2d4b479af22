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

import contextlib
from dataclasses import replace
from typing import Any

from csf._exceptions import NoProviderError, NoSetKeyError
from csf._invocation import Invocation, Invoker, MethodContext, PickerRef, Selector
from csf.set_key import found_in
from csf.set_rule import SET_KEY_METADATA, SetName, SetRule

MAX_POOLS = 10_000
"""SET pools kept per method (router pools times SETs); past it they are made afresh."""


class SetFilter:
    """Rebuilt on the first call after the `set` or `route` rule changed."""

    __slots__ = ("_base", "_ctx", "_home", "_pools", "_rule", "_set_key", "_versions")

    def __init__(self, ctx: MethodContext) -> None:
        self._ctx = ctx
        self._base = ctx.directory.pool(ctx.balancer, ctx.selector)
        self._home = None if ctx.home_set is None else SetName.parse("set", ctx.home_set)
        single_request = ctx.kind in ("unary_unary", "unary_stream")
        self._set_key = ctx.set_key if single_request else None
        self._versions = (-1, -1)
        self._rule: SetRule | None = None
        self._pools: dict[tuple[Selector, SetName], PickerRef] = {}

    @property
    def in_force(self) -> bool:
        """True while the service has a `set` rule."""
        return self._current() is not None

    def _current(self) -> SetRule | None:
        rules = self._ctx.rules
        versions = (rules.version("set"), rules.version("route"))
        if versions != self._versions:
            self._versions = versions
            self._rule = rules.get(SetRule)
            self._pools = {}  # the old pools go, pickers closed, once no call holds them
        return self._rule

    async def __call__(self, inv: Invocation, next: Invoker, /) -> Any:
        rule = self._current()
        if rule is None:  # the rule went while this chain was in use
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
        inv.pool, inv.set_name = await self._usable(rule, inv, owner, bucket)
        return await next(inv)

    def _key(self, rule: SetRule, inv: Invocation) -> str | None:
        given = found_in(inv.metadata, SET_KEY_METADATA)
        if given is None and rule.key is not None:
            given = found_in(inv.metadata, rule.key)
        if given is not None:
            return given
        if self._set_key is not None:
            try:
                value = self._set_key(inv.request)
            except Exception as exc:
                raise NoSetKeyError(
                    f"set_key failed for {self._ctx.method_name}: {type(exc).__name__}: {exc}"
                ) from exc
            if value:  # an empty key counts as none
                return str(value)
        return inv.hash_key or inv.set_key  # the stub's hash key, else the inherited one

    async def _usable(
        self, rule: SetRule, inv: Invocation, owner: SetName, bucket: int | None
    ) -> tuple[PickerRef, str]:
        """The pool the call goes to and its SET: `owner`'s, else its fallback's."""
        directory = self._ctx.directory
        routed = inv.pool or self._base
        if not directory.listed:
            with contextlib.suppress(NoProviderError):  # waits, within the deadline
                await directory.pick(self._pool(routed.selector, owner), inv)
        fallback = rule.fallback(owner)
        for set_name in (owner, fallback):
            if set_name is None:
                continue
            for base in (routed, self._base):  # a routed group empty here: the stub's own
                pool = self._pool(base.selector, set_name)
                picker = pool.picker
                if picker is not None and any(e.usable for e in picker.endpoints):
                    return pool, str(set_name)
        where = f"bucket {bucket}" if bucket is not None else "no key: the consumer's own SET"
        also = f" nor in its fallback {fallback}" if fallback is not None else ""
        raise NoProviderError(
            f"no usable provider of {directory.key} in SET {owner} ({where}){also}; "
            f"on_empty is {rule.on_empty!r}"
        )

    def _pool(self, selector: Selector, set_name: SetName) -> PickerRef:
        found = self._pools.get((selector, set_name))
        if found is None:
            if len(self._pools) >= MAX_POOLS:
                self._pools.clear()
            found = self._ctx.directory.pool(
                self._ctx.balancer, replace(selector, set=str(set_name))
            )
            self._pools[selector, set_name] = found
        return found
