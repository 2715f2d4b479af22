"""Tracing: a CLIENT span per logical call, a child CLIENT span per attempt (carrying W3C
trace context to the provider in metadata), and a SERVER span per handled call.

Attributes follow OpenTelemetry's RPC conventions (rpc.system, rpc.service, rpc.method,
rpc.grpc.status_code, server.address, server.port) plus csf.* ones.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from csf._invocation import Invocation, Invoker
from csf.observability._rpc import refused_by, rpc_attributes
from csf.resilience.classify import status_of

if TYPE_CHECKING:
    from csf._chain import MethodContext

_TRACE_KEYS = ("traceparent", "tracestate")


def _close(span: Span, code: grpc.StatusCode, error: BaseException | None) -> None:
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code is not grpc.StatusCode.OK:
        span.set_status(Status(StatusCode.ERROR, code.name))
        if error is not None and not isinstance(error, grpc.aio.AioRpcError):
            span.record_exception(error)


class ClientTracingFilter:
    """`tracing`: the CLIENT span of one logical call, retries and fallbacks included."""

    __slots__ = ("_attributes", "_name", "_tracer")

    def __init__(self, ctx: MethodContext, tracer: Tracer) -> None:
        self._tracer = tracer
        self._name = ctx.method.lstrip("/")
        self._attributes = {
            **rpc_attributes(ctx.method),
            "csf.tenant": ctx.directory.key.tenant,
            "csf.service": ctx.service,
            "csf.cluster": ctx.config.cluster,
            "csf.lb": ctx.config.lb,
        }

    async def __call__(self, inv: Invocation, next: Invoker, /) -> Any:
        with self._tracer.start_as_current_span(
            self._name,
            kind=SpanKind.CLIENT,
            attributes=self._attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            error: BaseException | None = None
            try:
                return await next(inv)
            except BaseException as raised:
                error = raised
                raise
            finally:
                span.set_attribute("csf.attempt", inv.attempt + 1)
                span.set_attribute("csf.fallback", inv.fallback_used)
                if inv.endpoint is not None:
                    span.set_attribute("csf.provider", inv.endpoint.address)
                if inv.breaker_state is not None:
                    span.set_attribute("csf.breaker.state", inv.breaker_state)
                refusal = refused_by(error or inv.failure)
                if refusal is not None:
                    span.set_attribute("csf.rejected_by", refusal)
                _close(span, status_of(error), error)


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
        with self._tracer.start_as_current_span(
            self._name,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            kept = [(k, v) for k, v in (inv.metadata or ()) if k not in _TRACE_KEYS]
            inv.metadata = kept + list(carrier.items())
            error: BaseException | None = None
            try:
                return await next(inv)
            except BaseException as raised:
                error = raised
                raise
            finally:
                _close(span, status_of(error), error)


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
        parent = propagate.extract(carrier)
        self._span = self._guard._tracer.start_span(
            self._guard._name, context=parent, kind=SpanKind.SERVER,
            attributes=self._guard._attributes,
        )  # fmt: skip
        self._token = otel_context.attach(trace.set_span_in_context(self._span))

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        code = server_status(self._context, error)
        _close(self._span, code, None if isinstance(error, grpc.aio.AbortError) else error)
        self._span.end()
        otel_context.detach(self._token)


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
