"""The `breaker` filter: one CircuitBreaker per method, its rule pushed from ZooKeeper."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import grpc

from csf._exceptions import CircuitOpenError, InvocationError
from csf._invocation import Invocation, Invoker
from csf.resilience.breaker import CircuitBreaker, State
from csf.resilience.classify import is_failure
from csf.rules import BreakerRule

if TYPE_CHECKING:
    from csf._chain import MethodContext


_GAUGE = {State.CLOSED: 0, State.HALF_OPEN: 1, State.OPEN: 2}


class BreakerFilter:
    __slots__ = ("_ctx", "breaker")

    def __init__(self, ctx: MethodContext) -> None:
        self._ctx = ctx
        self.breaker = CircuitBreaker(self._rule())
        ctx.rules.on_change(BreakerRule.KIND, lambda: self.breaker.update(self._rule()))
        if ctx.telemetry.instruments is not None:
            attributes = {"csf.service": ctx.service, "rpc.method": ctx.method_name}
            ctx.telemetry.instruments.watch(
                "breaker", lambda: [(_GAUGE[self.breaker.state], attributes)]
            )

    def _rule(self) -> BreakerRule:
        return self._ctx.rules.method_rule(BreakerRule, self._ctx.method_name) or BreakerRule()

    @property
    def state(self) -> State:
        return self.breaker.state

    async def __call__(self, inv: Invocation, next: Invoker, /) -> Any:
        breaker = self.breaker
        ticket = breaker.allow()
        if ticket is None:
            inv.breaker_state = State.OPEN.value
            raise CircuitOpenError(f"circuit open for {inv.service} {inv.method}")
        inv.breaker_state = breaker.state.value
        started = time.monotonic()
        try:
            response = await next(inv)
        except grpc.aio.AioRpcError as error:
            if isinstance(error, InvocationError):
                breaker.abandon(ticket)  # CSF's own refusal says nothing of the provider
            else:
                breaker.record(ticket, is_failure(error.code()), time.monotonic() - started)
            raise
        except (asyncio.CancelledError, Exception):
            breaker.abandon(ticket)
            raise
        breaker.record(ticket, False, time.monotonic() - started)
        return response
