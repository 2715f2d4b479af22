"""The provider side of the filter idea: each method's handler wrapped once, when the
server starts, in the guards CSF runs around it (not grpc.aio interceptors: on this
machine each costs 15-30 us of CPU a call).

A guard is `guard(context) -> async context manager` entered before the handler and
left after it (after the last streamed response); aborting in it answers the call
without running the handler. A guard may have `in_force: bool`: while False (a limit
with no rule) calls skip it; it is read again when the method's rules change. The
wrapper also hands the call's deadline to outgoing CSF calls (csf.resilience.deadline).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import TYPE_CHECKING, Any, Protocol

import grpc

from csf.resilience.deadline import inherit
from csf.set_key import serving

Context = grpc.aio.ServicerContext[Any, Any]
Guard = Callable[[Context], AbstractAsyncContextManager[None]]
if TYPE_CHECKING:  # generic only in the type stubs
    Handler = grpc.RpcMethodHandler[Any, Any]


class Versioned(Protocol):
    """Rules that count their changes (csf.rule_set.ServiceRules)."""

    @property
    def generation(self) -> int: ...


class Guards:
    """The guards of one method, outermost first; `in_force` those with work to do."""

    __slots__ = ("_all", "_generation", "_in_force", "_rules")

    def __init__(self, guards: Sequence[Guard], rules: Versioned | None = None) -> None:
        self._all = tuple(guards)
        self._rules = rules
        self._generation = -1
        self._in_force = self._all

    @property
    def in_force(self) -> tuple[Guard, ...]:
        if self._rules is not None and self._rules.generation != self._generation:
            self._generation = self._rules.generation
            self._in_force = tuple(g for g in self._all if getattr(g, "in_force", True))
        return self._in_force


def _behavior_field(handler: Handler) -> str:
    prefix = "stream" if handler.request_streaming else "unary"
    suffix = "stream" if handler.response_streaming else "unary"
    return f"{prefix}_{suffix}"


class OnEntry:
    """The guard context of a check made before the handler and nothing after it:
    `check(context)` refuses the call by aborting it."""

    __slots__ = ("_check", "_context")

    def __init__(self, check: Callable[[Context], Awaitable[None]], context: Context) -> None:
        self._check = check
        self._context = context

    async def __aenter__(self) -> None:
        await self._check(self._context)

    async def __aexit__(self, *exc_info: object) -> None:
        return None


class _Undecodable:
    """Stands for a request that did not parse; the wrapper answers INVALID_ARGUMENT."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """A deserializer whose failure reaches the wrapper (gRPC itself answers UNKNOWN)."""
    if deserializer is None:
        return None

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:
            return _Undecodable(exc)

    return deserialize


async def _refuse(request: _Undecodable, context: Context) -> None:
    await context.abort(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"request is not a valid message: {type(request.error).__name__}",
    )


def guarded(handler: Handler, guards: Guards) -> Handler:
    """`handler` with `guards` run around every call of it, outermost first. A single
    request that does not parse is answered INVALID_ARGUMENT before any guard."""
    field = _behavior_field(handler)
    behavior = getattr(handler, field)

    async def unary_response(request: Any, context: Context) -> Any:
        if isinstance(request, _Undecodable):  # checked inline: this runs on every call
            await _refuse(request, context)
        inherit(context.time_remaining())
        serving(context)
        in_force = guards.in_force
        if not in_force:
            result = behavior(request, context)
            return await result if inspect.isawaitable(result) else result
        if len(in_force) == 1:  # the usual case, without an exit stack's cost
            async with in_force[0](context):
                result = behavior(request, context)
                return await result if inspect.isawaitable(result) else result
        async with AsyncExitStack() as stack:
            for guard in in_force:
                await stack.enter_async_context(guard(context))
            result = behavior(request, context)
            return await result if inspect.isawaitable(result) else result

    async def stream_response(request: Any, context: Context) -> AsyncIterator[Any]:
        if isinstance(request, _Undecodable):  # checked inline: this runs on every call
            await _refuse(request, context)
        inherit(context.time_remaining())
        serving(context)
        async with AsyncExitStack() as stack:
            for guard in guards.in_force:
                await stack.enter_async_context(guard(context))
            result = behavior(request, context)
            if hasattr(result, "__aiter__"):
                async for response in result:
                    yield response
            elif inspect.isawaitable(result):  # a handler that writes with context.write()
                await result
            else:
                for response in result:
                    yield response

    wrapped = stream_response if handler.response_streaming else unary_response
    replaced: dict[str, Any] = {field: wrapped}
    if not handler.request_streaming:
        replaced["request_deserializer"] = _tolerant(handler.request_deserializer)
    return handler._replace(**replaced)  # type: ignore[attr-defined,no-any-return]
