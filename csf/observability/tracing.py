"""Tracing: a CLIENT span per logical call, whose first attempt it carries itself (it is
the parent the provider sees); each retry or forked copy gets a child CLIENT span of its
own. A SERVER span per handled call. A stream has one CLIENT span, from its opening to its
end. W3C trace context travels in the gRPC metadata (csf.observability._traceparent).

Attributes follow OpenTelemetry's RPC conventions (rpc.system, rpc.service, rpc.method,
rpc.grpc.status_code, server.address, server.port) plus csf.* ones. A span the sampler
left out costs no attribute work: only its context travels on, marked unsampled.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from csf._invocation import Invocation, Invoker, MethodContext
from csf.observability._rpc import refused_by, rpc_attributes
from csf.observability._traceparent import extract, with_trace_context
from csf.resilience.classify import status_of

ATTEMPT_FAILED = "csf.attempt.failed"
"""The event a logical call's span records when the attempt it carries fails."""

# Errors that are a status, not an exception worth recording: a provider's answer, an abort.
_NOT_EXCEPTIONAL = (grpc.aio.AioRpcError, grpc.aio.AbortError)


class _TracedCall:
    """The logical call being traced and its span, while it runs: its first attempt
    shares that span. Emptied when the call ends, since tasks the call started (gRPC's
    own) keep a copy of the context, and the invocation refers to them: no cycle stays."""

    __slots__ = ("inv", "span")

    def __init__(self, inv: Invocation, span: Span) -> None:
        self.inv: Invocation | None = inv
        self.span = span


_TRACED_CALL: ContextVar[_TracedCall | None] = ContextVar("csf_traced_call", default=None)


def _open(
    tracer: Tracer, name: str, kind: SpanKind, attributes: dict[str, Any], parent: Context | None
) -> tuple[Span, Token[Context]]:
    """Start a span and make it current; cheaper than start_as_current_span's generator."""
    span = tracer.start_span(name, context=parent, kind=kind, attributes=attributes)
    return span, otel_context.attach(trace.set_span_in_context(span))


def _finish(
    span: Span, code: grpc.StatusCode, error: BaseException | None, attributes: dict[str, Any]
) -> None:
    """End a recording span with `attributes` (its status code among them), set at once."""
    span.set_attributes(attributes)
    if code is not grpc.StatusCode.OK:
        span.set_status(Status(StatusCode.ERROR, code.name))
        if error is not None and not isinstance(error, _NOT_EXCEPTIONAL):
            span.record_exception(error)
    span.end()


def _provider(inv: Invocation, attributes: dict[str, Any]) -> dict[str, Any]:
    """`attributes` plus the provider of the call's current attempt, if it has one."""
    endpoint = inv.endpoint
    if endpoint is not None:
        attributes["server.address"] = endpoint.instance.host
        attributes["server.port"] = endpoint.instance.port
        attributes["csf.provider"] = endpoint.address
    if inv.set_name is not None:
        attributes["csf.set"] = inv.set_name
    return attributes


def _outcome(inv: Invocation, code: grpc.StatusCode, error: BaseException | None) -> dict[str, Any]:
    """What a logical call's span says of how it went."""
    outcome: dict[str, Any] = {
        "rpc.grpc.status_code": code.value[0],
        "csf.attempt": inv.attempt + 1,
        "csf.fallback": inv.fallback_used,
    }
    if inv.breaker_state is not None:
        outcome["csf.breaker.state"] = inv.breaker_state
    refusal = refused_by(error or inv.failure)
    if refusal is not None:
        outcome["csf.rejected_by"] = refusal
    return _provider(inv, outcome)


def _call_attributes(ctx: MethodContext) -> dict[str, Any]:
    return {
        **rpc_attributes(ctx.method),
        "csf.tenant": ctx.directory.key.tenant,
        "csf.service": ctx.service,
        "csf.cluster": ctx.config.cluster,
        "csf.lb": ctx.config.lb,
    }


class ClientTracingFilter:
    """`tracing`: the CLIENT span of one logical call, retries and fallbacks included.
    It is current while the call runs, for user code (fallbacks) and log records."""

    __slots__ = ("_attributes", "_name", "_tracer")

    def __init__(self, ctx: MethodContext, tracer: Tracer) -> None:
        self._tracer = tracer
        self._name = ctx.method.lstrip("/")
        self._attributes = _call_attributes(ctx)

    async def __call__(self, inv: Invocation, next: Invoker, /) -> Any:
        span, token = _open(self._tracer, self._name, SpanKind.CLIENT, self._attributes, None)
        traced = _TracedCall(inv, span)
        reset = _TRACED_CALL.set(traced)
        error: BaseException | None = None
        try:
            return await next(inv)
        except BaseException as raised:
            error = raised
            raise
        finally:
            traced.inv = None
            _TRACED_CALL.reset(reset)
            otel_context.detach(token)
            if span.is_recording():
                code = status_of(error)
                _finish(span, code, error, _outcome(inv, code, error))


class StreamTracingFilter(ClientTracingFilter):
    """`tracing` for a stream: one CLIENT span from its opening to its end, its context
    sent to the provider (the span is not made current: the stream outlives this call)."""

    __slots__ = ()

    async def __call__(self, inv: Invocation, next: Invoker, /) -> Any:
        span = self._tracer.start_span(
            self._name, kind=SpanKind.CLIENT, attributes=self._attributes
        )
        inv.metadata = with_trace_context(inv.metadata, span.get_span_context())
        if not span.is_recording():
            return await next(inv)
        try:
            call = await next(inv)
        except BaseException as error:
            code = status_of(error)
            _finish(span, code, error, _outcome(inv, code, error))
            raise
        inv.on_end(lambda code: _finish(span, code, None, _outcome(inv, code, None)))
        return call


class AttemptTracingFilter:
    """`attempt_tracing` (after load_balance): sends the trace context to the provider.
    The first attempt of a traced call sends the call's own span; a retry, a forked copy
    (or any attempt of a chain without `tracing`) gets a child span of its own."""

    __slots__ = ("_attributes", "_name", "_tracer")

    def __init__(self, ctx: MethodContext, tracer: Tracer) -> None:
        self._tracer = tracer
        self._name = ctx.method.lstrip("/")
        self._attributes = rpc_attributes(ctx.method)

    async def __call__(self, inv: Invocation, next: Invoker, /) -> Any:
        traced = _TRACED_CALL.get()
        if traced is None or traced.inv is not inv or inv.attempt:
            return await self._own_span(inv, next)
        call_span = traced.span
        inv.metadata = with_trace_context(inv.metadata, call_span.get_span_context())
        try:
            return await next(inv)
        except Exception as error:  # a retry may follow: say how this attempt went
            if call_span.is_recording():
                code = status_of(error).value[0]
                outcome = {"csf.attempt": 0, "rpc.grpc.status_code": code}
                call_span.add_event(ATTEMPT_FAILED, _provider(inv, outcome))
            raise

    async def _own_span(self, inv: Invocation, next: Invoker) -> Any:
        attributes = _provider(inv, {**self._attributes, "csf.attempt": inv.attempt})
        own, token = _open(self._tracer, self._name, SpanKind.CLIENT, attributes, None)
        inv.metadata = with_trace_context(inv.metadata, own.get_span_context())
        error: BaseException | None = None
        try:
            return await next(inv)
        except BaseException as raised:
            error = raised
            raise
        finally:
            otel_context.detach(token)
            if own.is_recording():
                code = status_of(error)
                _finish(own, code, error, {"rpc.grpc.status_code": code.value[0]})


class ServerTracingGuard:
    """Provider side: the SERVER span of one handled call, child of the caller's span."""

    def __init__(
        self, tracer: Tracer, method: str, service: str, set_name: str | None = None
    ) -> None:
        self._tracer = tracer
        self._name = method.lstrip("/")
        self._attributes = {**rpc_attributes(method), "csf.service": service}
        if set_name is not None:
            self._attributes["csf.set"] = set_name

    def __call__(self, context: grpc.aio.ServicerContext[Any, Any]) -> _ServerSpan:
        return _ServerSpan(self, context)


class _ServerSpan:
    __slots__ = ("_context", "_guard", "_span", "_token")

    def __init__(self, guard: ServerTracingGuard, context: grpc.aio.ServicerContext[Any, Any]):
        self._guard = guard
        self._context = context

    async def __aenter__(self) -> None:
        guard = self._guard
        parent = extract(self._context.invocation_metadata())
        self._span, self._token = _open(
            guard._tracer, guard._name, SpanKind.SERVER, guard._attributes, parent
        )

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        otel_context.detach(self._token)
        span = self._span
        if not span.is_recording():
            return
        code = server_status(self._context, error)
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        if code is not grpc.StatusCode.OK:
            span.set_status(Status(StatusCode.ERROR, code.name))
            if error is not None and not isinstance(error, _NOT_EXCEPTIONAL):
                span.record_exception(error)
        span.end()


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
