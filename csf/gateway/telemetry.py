"""What the gateway records of each request: a SERVER span (the CSF call's CLIENT span
goes under it), metrics by app, service, method and status, and one access-log line.

The span continues the caller's trace id from `traceparent`, but the gateway's own
`sample_ratio` decides whether it is recorded: a caller's sampled flag cannot make every
request traced. A request not recorded still gets a trace id (the caller's, or a new
one), so an error body and its access-log line can be matched. The access log never
holds bodies, queries or headers.
"""

from __future__ import annotations

import logging
import random
import time

from opentelemetry import trace
from opentelemetry.metrics import Meter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, Tracer

from csf.observability._traceparent import TRACEPARENT, extract

access_log = logging.getLogger("csf.gateway.access")

_MAX_TRACEPARENT = 128
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


class Record:
    """One request as its telemetry sees it; `finish` it once, when its answer is sent."""

    __slots__ = (
        "app", "finished", "grpc_service", "method", "path", "service", "span", "started", "verb",
    )  # fmt: skip

    def __init__(self, span: trace.Span, verb: str, path: str) -> None:
        self.span, self.verb, self.path = span, verb, path
        self.started = time.perf_counter()
        self.app: str | None = None
        self.service: str | None = None  # the service code
        self.grpc_service: str | None = None
        self.method: str | None = None
        self.finished = False

    @property
    def trace_id(self) -> str:
        return f"{self.span.get_span_context().trace_id:032x}"


class RequestTelemetry:
    def __init__(self, tracer: Tracer | None, meter: Meter | None, sample_ratio: float) -> None:
        self._tracer = tracer
        self._ratio = sample_ratio
        self._requests = self._durations = None
        if meter is not None:
            self._requests = meter.create_counter(
                "csf.gateway.requests", description="HTTP requests answered by the gateway"
            )
            self._durations = meter.create_histogram(
                "csf.gateway.duration", unit="s", description="HTTP request duration"
            )

    def start(self, verb: str, path: str, traceparent: str | None) -> Record:
        caller = _caller(traceparent)
        if self._tracer is None or random.random() >= self._ratio:
            trace_id = caller.trace_id if caller is not None else _new_id(128)
            unsampled = SpanContext(trace_id, _new_id(64), False, _NOT_SAMPLED)
            return Record(NonRecordingSpan(unsampled), verb, path)
        parent = None
        if caller is not None:
            remote = SpanContext(caller.trace_id, caller.span_id, True, _SAMPLED)
            parent = trace.set_span_in_context(NonRecordingSpan(remote))
        span = self._tracer.start_span(
            f"{verb} {path}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": verb, "url.path": path},
        )
        return Record(span, verb, path)

    def finish(self, record: Record, status: int) -> None:
        if record.finished:
            return
        record.finished = True
        elapsed = time.perf_counter() - record.started
        span = record.span
        if span.is_recording():
            span.set_attributes({
                "csf.app": record.app or "",
                "csf.service": record.service or "",
                "rpc.service": record.grpc_service or "",
                "rpc.method": record.method or "",
                "http.response.status_code": status,
            })  # fmt: skip
            if status >= 500:
                span.set_status(trace.StatusCode.ERROR)
            span.end()
        if self._requests is not None and self._durations is not None:
            attributes: dict[str, str | int] = {
                "csf.app": record.app or "",
                "csf.service": record.service or "",
                "rpc.method": record.method or "",
                "http.response.status_code": status,
            }
            self._requests.add(1, attributes)
            self._durations.record(elapsed, attributes)
        access_log.info(
            "%s %s %d %.1fms app=%s trace_id=%s",
            record.verb,
            record.path,
            status,
            elapsed * 1000,
            record.app or "-",
            record.trace_id,
        )


def _caller(header: str | None) -> SpanContext | None:
    """The caller's span context from `traceparent`, when it gives a valid one."""
    if header is None or len(header) > _MAX_TRACEPARENT:
        return None
    context = trace.get_current_span(extract(((TRACEPARENT, header),))).get_span_context()
    return context if context.is_valid else None


def _new_id(bits: int) -> int:
    return random.getrandbits(bits) or 1
