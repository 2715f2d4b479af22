"""Tracing: a CLIENT span per logical call, a child CLIENT span per attempt (carrying W3C
trace context to the provider in metadata), and a SERVER span per handled call. A stream
has one CLIENT span, from its opening to its end, and carries its context itself.

Attributes follow OpenTelemetry's RPC conventions (rpc.system, rpc.service, rpc.method,
rpc.grpc.status_code, server.address, server.port) plus csf.* ones.
"""

from __future__ import annotations

from contextvars import Token
from types import TracebackType
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from csf._invocation import Invocation, Invoker, MethodContext
from csf.observability._rpc import refused_by, rpc_attributes
from csf.resilience.classify import status_of

_TRACE_KEYS = ("traceparent", "tracestate")


# W3C trace context, as DESIGN says: the global propagator may carry more (baggage).
_W3C = TraceContextTextMapPropagator()


def _open(
    tracer: Tracer,
    name: str,
    kind: SpanKind,
    attributes: dict[str, Any],
    parent: Context | None = None,
) -> tuple[Span, Token[Context]]:
    """Start a span and make it current; cheaper than start_as_current_span's generator."""
    span = tracer.start_span(name, context=parent, kind=kind, attributes=attributes)
    return span, otel_context.attach(trace.set_span_in_context(span))


def _finish(
    span: Span,
    code: grpc.StatusCode,
    error: BaseException | None,
    attributes: dict[str, Any] | None = None,
) -> None:
    span.set_attributes({**(attributes or {}), "rpc.grpc.status_code": code.value[0]})
    if code is not grpc.StatusCode.OK:
        span.set_status(Status(StatusCode.ERROR, code.name))
        if error is not None and not isinstance(error, grpc.aio.AioRpcError):
            span.record_exception(error)
    span.end()


def _close(
    span: Span,
    token: Token[Context],
    code: grpc.StatusCode,
    error: BaseException | None,
    attributes: dict[str, Any] | None = None,
) -> None:
    _finish(span, code, error, attributes)
    otel_context.detach(token)


def _send_context(inv: Invocation, context: Context | None = None) -> None:
    """Put W3C trace context (of `context`, else the current one) in the call's metadata."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier, context)
    kept = [(k, v) for k, v in (inv.metadata or ()) if k not in _TRACE_KEYS]
    inv.metadata = kept + list(carrier.items())


def _outcome(inv: Invocation, error: BaseException | None) -> dict[str, Any]:
    """What a logical call's span says of how it went."""
    outcome: dict[str, Any] = {"csf.attempt": inv.attempt + 1, "csf.fallback": inv.fallback_used}
    if inv.endpoint is not None:
        outcome["csf.provider"] = inv.endpoint.address
    if inv.breaker_state is not None:
        outcome["csf.breaker.state"] = inv.breaker_state
    refusal = refused_by(error or inv.failure)
    if refusal is not None:
        outcome["csf.rejected_by"] = refusal
    return outcome


def _call_attributes(ctx: MethodContext) -> dict[str, Any]:
    return {
        **rpc_attributes(ctx.method),
        "csf.tenant": ctx.directory.key.tenant,
        "csf.service": ctx.service,
        "csf.cluster": ctx.config.cluster,
        "csf.lb": ctx.config.lb,
    }


class ClientTracingFilter:
    """`tracing`: the CLIENT span of one logical call, retries and fallbacks included."""

    __slots__ = ("_attributes", "_name", "_tracer")

    def __init__(self, ctx: MethodContext, tracer: Tracer) -> None:
        self._tracer = tracer
        self._name = ctx.method.lstrip("/")
        self._attributes = _call_attributes(ctx)

    async def __call__(self, inv: Invocation, next: Invoker, /) -> Any:
        span, token = _open(self._tracer, self._name, SpanKind.CLIENT, self._attributes)
        error: BaseException | None = None
        try:
            return await next(inv)
        except BaseException as raised:
            error = raised
            raise
        finally:
            _close(span, token, status_of(error), error, _outcome(inv, error))


class StreamTracingFilter(ClientTracingFilter):
    """`tracing` for a stream: one CLIENT span from its opening to its end, its context
    sent to the provider (the span is not made current: the stream outlives this call)."""

    __slots__ = ()

    async def __call__(self, inv: Invocation, next: Invoker, /) -> Any:
        span = self._tracer.start_span(
            self._name, kind=SpanKind.CLIENT, attributes=self._attributes
        )
        _send_context(inv, trace.set_span_in_context(span))
        try:
            call = await next(inv)
        except BaseException as error:
            _finish(span, status_of(error), error, _outcome(inv, error))
            raise
        inv.on_end(lambda code: _finish(span, code, None, _outcome(inv, None)))
        return call


class AttemptTracingFilter:
    """`attempt_tracing` (after load_balance): one child span per attempt on a provider."""

    __slots__ = ("_attributes", "_name", "_tracer")

    def __init__(self, ctx: MethodContext, tracer: Tracer) -> None:
        self._tracer = tracer
        self._name = ctx.method.lstrip("/")
        self._attributes = rpc_attributes(ctx.method)

    async def __call__(self, inv: Invocation, next: Invoker, /) -> Any:
        endpoint = inv.endpoint
        attributes = dict(self._attributes, **{"csf.attempt": inv.attempt})
        if endpoint is not None:
            attributes["server.address"] = endpoint.instance.host
            attributes["server.port"] = endpoint.instance.port
            attributes["csf.provider"] = endpoint.address
        span, token = _open(self._tracer, self._name, SpanKind.CLIENT, attributes)
        _send_context(inv)
        error: BaseException | None = None
        try:
            return await next(inv)
        except BaseException as raised:
            error = raised
            raise
        finally:
            _close(span, token, status_of(error), error)


class ServerTracingGuard:
    """Provider side: the SERVER span of one handled call, child of the caller's attempt."""

    def __init__(self, tracer: Tracer, method: str, service: str) -> None:
        self._tracer = tracer
        self._name = method.lstrip("/")
        self._attributes = {**rpc_attributes(method), "csf.service": service}

    def __call__(self, context: grpc.aio.ServicerContext[Any, Any]) -> _ServerSpan:
        return _ServerSpan(self, context)


class _ServerSpan:
    __slots__ = ("_context", "_guard", "_span", "_token")

    def __init__(self, guard: ServerTracingGuard, context: grpc.aio.ServicerContext[Any, Any]):
        self._guard = guard
        self._context = context

    async def __aenter__(self) -> None:
        carrier = {key: value for key, value in self._context.invocation_metadata() or ()
                   if key in _TRACE_KEYS and isinstance(value, str)}  # fmt: skip
        guard = self._guard
        self._span, self._token = _open(
            guard._tracer, guard._name, SpanKind.SERVER, guard._attributes, _W3C.extract(carrier)
        )

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        code = server_status(self._context, error)
        aborted = isinstance(error, grpc.aio.AbortError)
        _close(self._span, self._token, code, None if aborted else error)


def server_status(
    context: grpc.aio.ServicerContext[Any, Any], error: BaseException | None
) -> grpc.StatusCode:
    """The status a handler ended with: what it set or aborted with, else from its error."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if error is None:
        return grpc.StatusCode.OK
    return status_of(error)
