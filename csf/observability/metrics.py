"""Metrics through the OpenTelemetry metrics API, on both sides of a call.

Attribute sets are built once per method (and per status code), not per call.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

import grpc

from csf._invocation import Invocation, Invoker, MethodContext
from csf.observability._rpc import refused_by, rpc_attributes
from csf.observability.instruments import Instruments
from csf.observability.tracing import server_status
from csf.resilience.classify import status_of

# Attribute dicts cached per method: codes times the SETs its calls went to.
MAX_CACHED_ATTRIBUTES = 1_000


class _ByCode:
    """The method's attributes with rpc.grpc.status_code (and csf.set, for a call that
    went to a SET) added, one dict per code and SET, cached."""

    __slots__ = ("_base", "_by_code", "_by_set")

    def __init__(self, base: dict[str, Any]) -> None:
        self._base = base
        self._by_code: dict[grpc.StatusCode, dict[str, Any]] = {}
        self._by_set: dict[tuple[grpc.StatusCode, str], dict[str, Any]] = {}

    def __call__(self, code: grpc.StatusCode, set_name: str | None = None) -> dict[str, Any]:
        if set_name is None:  # most calls: no tuple key to build
            found = self._by_code.get(code)
            if found is None:
                found = self._by_code[code] = {**self._base, "rpc.grpc.status_code": code.value[0]}
            return found
        found = self._by_set.get((code, set_name))
        if found is None:
            if len(self._by_set) >= MAX_CACHED_ATTRIBUTES:
                self._by_set.clear()
            found = {**self._base, "rpc.grpc.status_code": code.value[0], "csf.set": set_name}
            self._by_set[code, set_name] = found
        return found


class ClientMetricsFilter:
    """`metrics`: calls by code, latency, calls in flight, retries, fallbacks, refusals;
    a stream counts from its opening to its end."""

    __slots__ = ("_attributes", "_by_code", "_instruments")

    def __init__(self, ctx: MethodContext, instruments: Instruments) -> None:
        self._instruments = instruments
        self._attributes = {**rpc_attributes(ctx.method), "csf.service": ctx.service}
        self._by_code = _ByCode(self._attributes)

    async def __call__(self, inv: Invocation, next: Invoker, /) -> Any:
        self._instruments.client_active.add(1, self._attributes)
        started = time.monotonic()
        try:
            result = await next(inv)
        except BaseException as error:
            self._ended(inv, started, status_of(error), error)
            raise
        if inv.streaming:
            inv.on_end(lambda code: self._ended(inv, started, code, None))
        else:
            self._ended(inv, started, grpc.StatusCode.OK, None)
        return result

    def _ended(
        self, inv: Invocation, started: float, code: grpc.StatusCode, error: BaseException | None
    ) -> None:
        instruments, attributes = self._instruments, self._attributes
        instruments.client_active.add(-1, attributes)
        code_attributes = self._by_code(code, inv.set_name)
        instruments.client_calls.add(1, code_attributes)
        instruments.client_duration.record(time.monotonic() - started, code_attributes)
        if inv.attempt:
            instruments.client_retries.add(inv.attempt, attributes)
        if inv.fallback_used:
            instruments.client_fallbacks.add(1, attributes)
        refusal = refused_by(error or inv.failure)
        if refusal is not None:
            instruments.client_rejected.add(1, {**attributes, "csf.rejected_by": refusal})


class ServerMetricsGuard:
    """Provider side: calls handled by code, their duration, handlers running."""

    def __init__(
        self, instruments: Instruments, method: str, service: str, set_name: str | None = None
    ) -> None:
        self.instruments = instruments
        self.attributes = {**rpc_attributes(method), "csf.service": service}
        if set_name is not None:
            self.attributes["csf.set"] = set_name
        self.by_code = _ByCode(self.attributes)

    def __call__(self, context: grpc.aio.ServicerContext[Any, Any]) -> _Measured:
        return _Measured(self, context)


class _Measured:
    __slots__ = ("_context", "_guard", "_started")

    def __init__(self, guard: ServerMetricsGuard, context: grpc.aio.ServicerContext[Any, Any]):
        self._guard = guard
        self._context = context

    async def __aenter__(self) -> None:
        self._guard.instruments.server_active.add(1, self._guard.attributes)
        self._started = time.monotonic()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        guard = self._guard
        guard.instruments.server_active.add(-1, guard.attributes)
        attributes = guard.by_code(server_status(self._context, error))
        guard.instruments.server_calls.add(1, attributes)
        guard.instruments.server_duration.record(time.monotonic() - self._started, attributes)
