"""Concurrency limits (asyncio.Semaphore): Dubbo's `actives` and `executes`.

Consumer side (`concurrency` filter): at most `consumer` calls of a method in flight from
this process. Provider side (a guard around the handler): at most `provider` handlers of
a method at once, or `@csf.provider(executes=N)`. A call over the limit waits up to the
rule's `max_wait_ms` within its deadline, else is refused with RESOURCE_EXHAUSTED
(`ConcurrencyLimitError` on the consumer). Permits come back on success, error,
timeout and cancellation alike.
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType
from typing import Any

import grpc

from csf._exceptions import ConcurrencyLimitError
from csf._invocation import Invocation, Invoker, LiveRules, MethodContext, MethodState
from csf.resilience._limits import acquire_within, admit_or_abort
from csf.rules import ConcurrencyRule


class ConcurrencyState:
    """The consumer-side semaphore of one method, shared by all its stubs."""

    __slots__ = ("_limit", "_state", "max_wait", "semaphore")

    def __init__(self, state: MethodState) -> None:
        self._state = state
        self._limit: int | None = None
        self.semaphore: asyncio.Semaphore | None = None
        self._reload()
        state.watch(ConcurrencyRule.KIND, self._reload)

    def _reload(self) -> None:
        rule = self._state.rules.method_rule(ConcurrencyRule, self._state.method_name)
        limit = rule.consumer if rule is not None else None
        self.max_wait = rule.max_wait_ms / 1000 if rule is not None else 0.0
        if limit != self._limit:  # a rule for other methods leaves this one's permits be
            self._limit = limit
            # Calls in flight keep (and give back) the old semaphore's permits.
            self.semaphore = asyncio.Semaphore(limit) if limit else None


class ConcurrencyFilter:
    """`concurrency`: a permit per call in flight; an open stream holds one until it ends."""

    __slots__ = ("_limit",)

    def __init__(self, ctx: MethodContext) -> None:
        self._limit = ctx.state.of(ConcurrencyState)

    @property
    def in_force(self) -> bool:
        return self._limit.semaphore is not None

    async def __call__(self, inv: Invocation, next: Invoker, /) -> Any:
        semaphore = self._limit.semaphore
        if semaphore is None:
            return await next(inv)
        if semaphore.locked():
            wait = min(self._limit.max_wait, inv.deadline - time.monotonic())
            if not await acquire_within(semaphore.acquire(), wait):
                raise ConcurrencyLimitError(f"{inv.method}: too many calls in flight")
        else:
            await semaphore.acquire()
        try:
            result = await next(inv)
        except BaseException:
            semaphore.release()
            raise
        if inv.streaming:
            inv.on_end(lambda code: semaphore.release())
        else:
            semaphore.release()
        return result


class ExecutesGuard:
    """Provider side: the handlers of one method that may run at once."""

    def __init__(self, method: str, executes: int | None, rules: LiveRules | None) -> None:
        self._method = method
        self._name = method.rsplit("/", 1)[-1]
        self._default = executes
        self._rules = rules
        self.running = 0
        self._reload()
        if rules is not None:
            rules.on_change(ConcurrencyRule.KIND, self._reload)

    def _reload(self) -> None:
        rule = self._rules.method_rule(ConcurrencyRule, self._name) if self._rules else None
        limit = rule.provider if rule is not None and rule.provider else self._default
        self._semaphore = asyncio.Semaphore(limit) if limit else None
        self._max_wait = rule.max_wait_ms / 1000 if rule is not None else 0.0

    @property
    def in_force(self) -> bool:
        return self._semaphore is not None

    def __call__(self, context: grpc.aio.ServicerContext[Any, Any]) -> _Permit:
        return _Permit(self, context)


class _Permit:
    __slots__ = ("_context", "_guard", "_semaphore")

    def __init__(self, guard: ExecutesGuard, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        self._guard = guard
        self._context = context
        self._semaphore = guard._semaphore

    async def __aenter__(self) -> None:
        semaphore = self._semaphore
        if semaphore is not None:
            if semaphore.locked():
                refusal = f"{self._guard._method}: too many calls at once on this provider"
                await admit_or_abort(
                    self._context, semaphore.acquire(), self._guard._max_wait, refusal
                )
            else:
                await semaphore.acquire()
        self._guard.running += 1

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._guard.running -= 1
        if self._semaphore is not None:
            self._semaphore.release()
