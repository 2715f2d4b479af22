"""The `fallback` filter: the method's fallback answers when the call cannot be served.

It answers when CSF refused the call (open breaker, limits, no provider) or the provider
failed it after retries; a business error (INVALID_ARGUMENT, NOT_FOUND...) passes through.
While a `degrade` rule covers the method, the fallback answers every call. Without a
fallback function, an empty response answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc

from csf._exceptions import CircuitOpenError, InvocationError
from csf._invocation import Invocation, Invoker
from csf.resilience.classify import is_failure
from csf.rules import DegradeRule

if TYPE_CHECKING:
    from csf._chain import MethodContext


async def answer_instead(ctx: MethodContext, inv: Invocation, error: BaseException) -> Any:
    """The fallback's answer, or an empty response when the method has no fallback."""
    inv.fallback_used = True
    inv.failure = error
    if ctx.fallback is not None:
        return await ctx.fallback(inv.request, error)
    if ctx.empty_response is None:
        raise error
    return ctx.empty_response()


class FallbackFilter:
    __slots__ = ("_ctx", "_degraded")

    def __init__(self, ctx: MethodContext) -> None:
        self._ctx = ctx
        self._degraded = False
        ctx.rules.on_change(DegradeRule.KIND, self._reload)
        self._reload()

    def _reload(self) -> None:
        rule = self._ctx.rules.method_rule(DegradeRule, self._ctx.method_name)
        self._degraded = rule is not None and rule.all

    async def __call__(self, inv: Invocation, next: Invoker, /) -> Any:
        if self._degraded:
            return await answer_instead(self._ctx, inv, CircuitOpenError("degraded by rule"))
        try:
            return await next(inv)
        except grpc.aio.AioRpcError as error:
            refused = isinstance(error, InvocationError) or is_failure(error.code())
            if self._ctx.fallback is None or not refused:
                raise
            return await answer_instead(self._ctx, inv, error)
