"""The `fallback` filter: the method's fallback answers when the call cannot be served.

It answers when CSF refused the call (open breaker, limits, no provider) or the provider
failed it after retries; a business error (INVALID_ARGUMENT, NOT_FOUND...) passes through.
While a `degrade` rule covers the method, the fallback answers every call; with no
fallback, a degraded call fails with `DegradedError` (UNAVAILABLE), unless the stub asked
for empty replies (`fallback=csf.EMPTY_REPLY`). Fallbacks answer unary calls only (a
stream's context has none): a degraded stream fails with `DegradedError` when it opens.
"""

from __future__ import annotations

from typing import Any

import grpc

from csf._exceptions import DegradedError, InvocationError
from csf._invocation import Invocation, Invoker, MethodContext, MethodState
from csf.config import EmptyReply
from csf.resilience.classify import is_failure
from csf.rules import DegradeRule


async def answer_instead(
    ctx: MethodContext, inv: Invocation, error: BaseException, *, empty_if_none: bool = False
) -> Any:
    """The fallback's answer; an empty response if the stub asked for those (or there is
    no fallback and `empty_if_none`); else `error` is raised."""
    fallback, empty = ctx.fallback, ctx.empty_response
    if fallback is not None and not isinstance(fallback, EmptyReply):
        inv.fallback_used, inv.failure = True, error
        return await fallback(inv.request, error)
    if empty is not None and (fallback is not None or empty_if_none):
        inv.fallback_used, inv.failure = True, error
        return empty()
    raise error


class DegradeState:
    """Whether a `degrade` rule covers the method now."""

    __slots__ = ("_state", "degraded")

    def __init__(self, state: MethodState) -> None:
        self._state = state
        self._reload()
        state.watch(DegradeRule.KIND, self._reload)

    def _reload(self) -> None:
        rule = self._state.rules.method_rule(DegradeRule, self._state.method_name)
        self.degraded = rule is not None and rule.all


class FallbackFilter:
    __slots__ = ("_ctx", "_degrade")

    def __init__(self, ctx: MethodContext) -> None:
        self._ctx = ctx
        self._degrade = ctx.state.of(DegradeState)

    @property
    def in_force(self) -> bool:
        """Without a fallback, only a degrade rule gives it work."""
        return self._ctx.fallback is not None or self._degrade.degraded

    async def __call__(self, inv: Invocation, next: Invoker, /) -> Any:
        if self._degrade.degraded:
            refusal = DegradedError(f"{inv.service} {inv.method} is degraded by the degrade rule")
            return await answer_instead(self._ctx, inv, refusal)
        try:
            return await next(inv)
        except grpc.aio.AioRpcError as error:
            refused = isinstance(error, InvocationError) or is_failure(error.code())
            if self._ctx.fallback is None or not refused:
                raise
            return await answer_instead(self._ctx, inv, error)
