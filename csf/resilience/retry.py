"""The `retry` filter: Dubbo's cluster modes, with tenacity and a retry budget.

- failover (default): on UNAVAILABLE, or when one attempt's share of the deadline ran
  out, try another provider; only for idempotent methods, never past the deadline, with
  exponential back-off and jitter, within the retry budget. The first attempt gets an
  equal share of the deadline, each retry twice the share of the attempt before, and
  none less than ATTEMPT_HEADROOM x the method's recent latency (peak EWMA of its
  successful attempts): a frozen provider costs a fast method only part of its
  deadline, and a slow but healthy method is not cut short by its own retries.
- failfast: one attempt.
- failsafe: one attempt; a failure is logged and answered by the fallback, or an empty
  response.
- forking: retries + 1 providers at once; the first success wins, the rest are cancelled.

Streams are never retried: their requests are consumed as they are sent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from typing import Any

import grpc
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base

from csf._exceptions import InvocationError
from csf._invocation import Invocation, Invoker, MethodContext, MethodState
from csf.resilience.budget import RetryBudget
from csf.resilience.fallback import answer_instead
from csf.resilience.latency import PeakEwma
from csf.rules import RetryRule

logger = logging.getLogger("csf.retry")

# Back-off before retry n (1, 2, ...): 10 ms x 2^(n-1) plus up to 10 ms of jitter, at
# most 100 ms. The first is slept before tenacity takes over; it waits the later ones.
FIRST_BACKOFF = 0.01
BACKOFF_JITTER = 0.01
BACKOFF_MAX = 0.1
# An attempt may take this many times the method's recent latency, however many are left.
ATTEMPT_HEADROOM = 4.0


class stop_when_spent(stop_base):
    """Stop when the next attempt would start past the deadline, or the budget is spent."""

    def __init__(self, inv: Invocation, budget: RetryBudget) -> None:
        self._inv = inv
        self._budget = budget

    def __call__(self, retry_state: RetryCallState) -> bool:
        late = time.monotonic() + retry_state.upcoming_sleep >= self._inv.deadline
        return late or not self._budget.try_withdraw()


class RetryState:
    """The retry budget, the `retry` rule and the recent latency of one method."""

    __slots__ = ("_state", "budget", "latency", "mode", "retries")

    def __init__(self, state: MethodState) -> None:
        self._state = state
        self.budget = RetryBudget(RetryRule.budget_ratio, RetryRule.budget_min_per_s, state.clock)
        self.latency = PeakEwma()
        self._reload()
        state.watch(RetryRule.KIND, self._reload)

    def _reload(self) -> None:
        rule = self._state.rules.method_rule(RetryRule, self._state.method_name) or RetryRule()
        self.mode, self.retries = rule.cluster, rule.retries
        self.budget.ratio, self.budget.min_per_s = rule.budget_ratio, rule.budget_min_per_s


def retry_filter(ctx: MethodContext) -> RetryFilter | None:
    return None if ctx.streaming else RetryFilter(ctx)


class RetryFilter:
    __slots__ = ("_ctx", "_state", "budget")

    def __init__(self, ctx: MethodContext) -> None:
        self._ctx = ctx
        self._state = ctx.state.of(RetryState)
        self.budget = self._state.budget

    @property
    def in_force(self) -> bool:
        """False when this stub's calls get one plain attempt: nothing to retry, and
        nothing to count in the budget retries are paid from."""
        return self._state.mode == "failsafe" or self._attempts > 1

    @property
    def _attempts(self) -> int:
        """How many providers a call may try (failover) or be sent to at once (forking)."""
        if self._state.mode == "failfast":
            return 1
        if not self._ctx.config.idempotent:  # copies would run a request several times
            return 1
        rule_retries = self._state.retries
        return (self._ctx.config.retries if rule_retries is None else rule_retries) + 1

    async def __call__(self, inv: Invocation, next: Invoker, /) -> Any:
        self.budget.deposit()
        mode = self._state.mode
        if mode == "forking":
            return await self._forking(inv, next)
        if mode == "failsafe":
            return await self._failsafe(inv, next)
        return await self._failover(inv, next)  # failfast: one attempt (_attempts)

    def _retryable(self, inv: Invocation, error: BaseException) -> bool:
        if not isinstance(error, grpc.aio.AioRpcError) or isinstance(error, InvocationError):
            return False  # CSF's own verdicts would not change on another try
        code = error.code()
        if code is grpc.StatusCode.DEADLINE_EXCEEDED:
            return time.monotonic() < inv.deadline  # only the attempt's share ran out
        return code is grpc.StatusCode.UNAVAILABLE

    def _start_attempt(self, inv: Invocation, share: float) -> None:
        """Let the attempt about to start run for `share` seconds, or for what the
        method's recent latency needs if that is longer, within the call's deadline."""
        share = max(share, ATTEMPT_HEADROOM * self._state.latency.value)
        inv.attempt_deadline = min(inv.deadline, time.monotonic() + share)

    async def _attempt(self, inv: Invocation, next: Invoker) -> Any:
        started = time.monotonic()
        response = await next(inv)
        now = time.monotonic()
        self._state.latency.observe(now - started, now)
        return response

    async def _failover(self, inv: Invocation, next: Invoker) -> Any:
        attempts = self._attempts
        if attempts == 1:
            return await next(inv)
        share = (inv.deadline - time.monotonic()) / attempts
        self._start_attempt(inv, share)
        try:  # the first attempt without tenacity: the common case stays cheap
            return await self._attempt(inv, next)
        except Exception as error:
            backoff = FIRST_BACKOFF + random.uniform(0, BACKOFF_JITTER)
            late = time.monotonic() + backoff >= inv.deadline
            if not self._retryable(inv, error) or late or not self.budget.try_withdraw():
                raise
        await asyncio.sleep(backoff)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(attempts - 1) | stop_when_spent(inv, self.budget),
            wait=wait_exponential_jitter(
                multiplier=2 * FIRST_BACKOFF, max=BACKOFF_MAX, jitter=BACKOFF_JITTER
            ),
            retry=retry_if_exception(lambda error: self._retryable(inv, error)),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                inv.attempt = attempt.retry_state.attempt_number
                share *= 2
                self._start_attempt(inv, share)
                return await self._attempt(inv, next)
        raise AssertionError("tenacity ended without an outcome")  # pragma: no cover

    async def _failsafe(self, inv: Invocation, next: Invoker) -> Any:
        try:
            return await next(inv)
        except grpc.aio.AioRpcError as error:
            logger.warning(
                "failsafe: %s %s failed (%s); answering instead",
                inv.service,
                inv.method,
                error.code(),
            )
            return await answer_instead(self._ctx, inv, error, empty_if_none=True)

    async def _forking(self, inv: Invocation, next: Invoker) -> Any:
        if self._attempts == 1:
            return await next(inv)
        # The copies share `tried`, so each picks a provider the others have not.
        copies = {
            asyncio.ensure_future(next(copy)): copy
            for copy in (dataclasses.replace(inv, attempt=n) for n in range(self._attempts))
        }
        pending = set(copies)
        error: BaseException | None = None
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task.exception() is None:
                        winner = copies[task]  # the call object reads the winner's call
                        inv.call, inv.endpoint, inv.attempt = (
                            winner.call,
                            winner.endpoint,
                            winner.attempt,
                        )
                        return task.result()
                    error = task.exception()
            assert error is not None
            raise error
        finally:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
