"""The `router` filter: which providers each call may go to.

The stub's `group`, `version` and `tags` narrow the providers; the service's `route`
rule (pushed under `configs/route`) can require more tags and share calls among groups
by weight, e.g. 10% to `gray`. A group that has no providers right now gives its share
back to the stub's own selection. A stub that names its group is not re-split.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from dataclasses import replace
from itertools import accumulate
from typing import Any

from csf._invocation import Invocation, Invoker, MethodContext, PickerRef
from csf.rules import RouteRule


class _Routes:
    """The pools of one method under one route rule, with their shares."""

    __slots__ = ("_cumulative", "_fallback", "_pools", "_total")

    def __init__(self, pools: list[PickerRef], weights: list[int], fallback: PickerRef) -> None:
        self._pools = pools
        self._cumulative = list(accumulate(weights))
        self._total = self._cumulative[-1] if self._cumulative else 0
        self._fallback = fallback

    def choose(self) -> PickerRef:
        if not self._pools:
            return self._fallback
        if len(self._pools) == 1:
            pool = self._pools[0]
        else:
            pool = self._pools[bisect_right(self._cumulative, random.random() * self._total)]
        picker = pool.picker
        return pool if picker is not None and picker.endpoints else self._fallback


class RouterFilter:
    """Streams and unary calls alike. Rebuilt on the first call after the `route` rule
    changed (a version check, not a listener: a stub leaves nothing behind)."""

    __slots__ = ("_base", "_ctx", "_routes", "_splits", "_version")

    def __init__(self, ctx: MethodContext) -> None:
        self._ctx = ctx
        self._base = ctx.selector
        self._version = ctx.rules.version("route")
        self._splits = False
        self._routes = self._build()

    @property
    def in_force(self) -> bool:
        """False while no route rule narrows or splits this method's calls: load
        balancing's own pool is the stub's selection already."""
        self._current()
        return self._splits

    def _current(self) -> _Routes:
        version = self._ctx.rules.version("route")
        if version != self._version:
            self._version = version
            self._routes = self._build()
        return self._routes

    def _build(self) -> _Routes:
        ctx, base = self._ctx, self._base
        route = ctx.rules.get(RouteRule)
        rule = route.for_method(ctx.method_name) if route is not None else None
        selector = base
        if rule is not None and rule.tags:
            selector = replace(base, tags=base.tags | frozenset(rule.tags.items()))
        own = ctx.directory.pool(ctx.balancer, selector)
        self._splits = selector != base
        if rule is None or not rule.group_weights or base.group is not None:
            return _Routes([own], [1], own)
        self._splits = True
        shares = sorted((group, weight) for group, weight in rule.group_weights.items() if weight)
        pools = [ctx.directory.pool(ctx.balancer, replace(selector, group=g)) for g, _ in shares]
        return _Routes(pools, [weight for _, weight in shares], own)

    async def __call__(self, inv: Invocation, next: Invoker, /) -> Any:
        inv.pool = self._current().choose()
        return await next(inv)
