"""The `breaker` filter: one CircuitBreaker per method and Consumer, its rule pushed from
ZooKeeper. A stream asks the breaker when it opens and reports how it ended; how long a
stream stays open says nothing of the provider, so streams are never slow calls."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from csf._exceptions import CircuitOpenError, InvocationError
from csf._invocation import Invocation, Invoker, MethodContext, MethodState
from csf.resilience.breaker import CircuitBreaker, State
from csf.resilience.classify import is_failure
from csf.rules import BreakerRule

_GAUGE = {State.CLOSED: 0, State.HALF_OPEN: 1, State.OPEN: 2}


class BreakerState:
    """The breaker of one method, shared by all its stubs."""

    __slots__ = ("_state", "breaker")

    def __init__(self, state: MethodState) -> None:
        self._state = state
        self.breaker = CircuitBreaker(self._rule(), state.clock)
        state.watch(BreakerRule.KIND, lambda: self.breaker.update(self._rule()))
        instruments = state.telemetry.instruments
        if instruments is not None:
            attributes = {"csf.service": state.service, "rpc.method": state.method_name}
            gauge = instruments.watch("breaker", lambda: [(_GAUGE[self.breaker.state], attributes)])
            state.until_closed(gauge)

    def _rule(self) -> BreakerRule:
        return self._state.rules.method_rule(BreakerRule, self._state.method_name) or BreakerRule()


class BreakerFilter:
    __slots__ = ("_clock", "breaker")

    def __init__(self, ctx: MethodContext) -> None:
        self.breaker = ctx.state.of(BreakerState).breaker
        self._clock = ctx.state.clock

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
        started = self._clock()
        try:
            result = await next(inv)
        except grpc.aio.AioRpcError as error:
            if isinstance(error, InvocationError):
                breaker.abandon(ticket)  # CSF's own refusal says nothing of the provider
            else:
                breaker.record(ticket, is_failure(error.code()), self._clock() - started)
            raise
        except (asyncio.CancelledError, Exception):
            breaker.abandon(ticket)
            raise
        if inv.streaming:
            inv.on_end(lambda code: self._stream_ended(ticket, code))
        else:
            breaker.record(ticket, False, self._clock() - started)
        return result

    def _stream_ended(self, ticket: int, code: grpc.StatusCode) -> None:
        if code is grpc.StatusCode.CANCELLED:  # the caller gave up: no verdict
            self.breaker.abandon(ticket)
        else:
            self.breaker.record(ticket, is_failure(code), 0.0)
