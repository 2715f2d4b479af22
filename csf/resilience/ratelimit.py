"""Token-bucket rate limits (aiolimiter), per method and per process, on either side.

The `ratelimit` rule gives `rate` calls per second with `burst` tokens on the `side` it
names; the default burst is a twentieth of a second's worth (at least 1), which keeps the
admitted rate at `rate` when calls arrive in a steady stream. A call finding no token
waits up to `max_wait_ms` within its deadline, else is refused: `RateLimitedError` on the
consumer, RESOURCE_EXHAUSTED from the provider.
"""

from __future__ import annotations

import time
from typing import Any

import grpc
from aiolimiter import AsyncLimiter

from csf._exceptions import RateLimitedError
from csf._handlers import OnEntry
from csf._invocation import Invocation, Invoker, LiveRules, MethodContext, MethodState
from csf.resilience._limits import acquire_within, admit_or_abort
from csf.rules import RateLimitRule


def _bucket(rules: LiveRules | None, method: str, side: str) -> tuple[AsyncLimiter | None, float]:
    rule = rules.method_rule(RateLimitRule, method) if rules is not None else None
    if rule is None or rule.side != side or rule.rate is None:
        return None, 0.0
    burst = rule.burst or max(1.0, rule.rate / 20)
    return AsyncLimiter(max_rate=burst, time_period=burst / rule.rate), rule.max_wait_ms / 1000


class RateLimitState:
    """The consumer-side token bucket of one method, shared by all its stubs."""

    __slots__ = ("_state", "limiter", "max_wait")

    def __init__(self, state: MethodState) -> None:
        self._state = state
        self.limiter: AsyncLimiter | None = None
        self._reload()
        state.watch(RateLimitRule.KIND, self._reload)

    def _reload(self) -> None:
        limiter, self.max_wait = _bucket(self._state.rules, self._state.method_name, "consumer")
        old = self.limiter
        same = (
            old is not None
            and limiter is not None
            and (old.max_rate, old.time_period) == (limiter.max_rate, limiter.time_period)
        )
        if not same:  # a rule for other methods leaves this one's tokens be
            self.limiter = limiter


class RateLimitFilter:
    """`rate_limit`: one token per unary call, and per stream opened."""

    __slots__ = ("_bucket",)

    def __init__(self, ctx: MethodContext) -> None:
        self._bucket = ctx.state.of(RateLimitState)

    @property
    def in_force(self) -> bool:
        return self._bucket.limiter is not None

    async def __call__(self, inv: Invocation, next: Invoker, /) -> Any:
        limiter = self._bucket.limiter
        if limiter is not None:
            if limiter.has_capacity():
                await limiter.acquire()
            else:
                wait = min(self._bucket.max_wait, inv.deadline - time.monotonic())
                if not await acquire_within(limiter.acquire(), wait):
                    raise RateLimitedError(f"{inv.method}: over the rate limit")
        return await next(inv)


class RateLimitGuard:
    """Provider side: the token bucket of one method."""

    def __init__(self, method: str, rules: LiveRules | None) -> None:
        self._method = method
        self._name = method.rsplit("/", 1)[-1]
        self._rules = rules
        self._reload()
        if rules is not None:
            rules.on_change(RateLimitRule.KIND, self._reload)

    def _reload(self) -> None:
        self._limiter, self._max_wait = _bucket(self._rules, self._name, "provider")

    @property
    def in_force(self) -> bool:
        return self._limiter is not None

    def __call__(self, context: grpc.aio.ServicerContext[Any, Any]) -> OnEntry:
        return OnEntry(self._admit, context)

    async def _admit(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        limiter = self._limiter
        if limiter is None:
            return
        if limiter.has_capacity():
            await limiter.acquire()
            return
        refusal = f"{self._method}: over the rate limit"
        await admit_or_abort(context, limiter.acquire(), self._max_wait, refusal)
