"""W3C trace context in gRPC metadata, without the propagator's carrier dicts per call.

A call sends `traceparent` formatted straight from its span context (and `tracestate`
only when it has one). A provider parses a lone version-00 `traceparent` itself and hands
anything else (a tracestate, another version, odd spacing, repeated headers) to
OpenTelemetry's W3C propagator, so both read every header alike.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
_TRACE_KEYS = (TRACEPARENT, TRACESTATE)

# W3C trace context, as DESIGN says: the global propagator may carry more (baggage).
_W3C = TraceContextTextMapPropagator()
_VERSION_00 = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_NO_PARENT = Context()

Pairs = tuple[tuple[str, Any], ...]
Metadata = Collection[tuple[str, Any]] | None


def traceparent(context: SpanContext) -> str:
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def with_trace_context(metadata: Metadata, context: SpanContext) -> Pairs:
    """`metadata` with `context`'s trace headers in place of any it had (none for an
    invalid context, as the propagator would send)."""
    if not context.is_valid:
        added: Pairs = ()
    elif context.trace_state:
        added = ((TRACEPARENT, traceparent(context)), (TRACESTATE, context.trace_state.to_header()))
    else:
        added = ((TRACEPARENT, traceparent(context)),)
    if not metadata:
        return added
    return (*(item for item in metadata if item[0] not in _TRACE_KEYS), *added)


def extract(metadata: Metadata) -> Context:
    """The remote parent that incoming `metadata` names, or a context with none."""
    parent: str | None = None
    unusual = False
    for key, value in metadata or ():
        if key == TRACEPARENT:
            unusual = unusual or parent is not None
            parent = value
        elif key == TRACESTATE:
            unusual = True
    if parent is None:
        return _NO_PARENT
    match = None if unusual or not isinstance(parent, str) else _VERSION_00.fullmatch(parent)
    if match is None:
        return _extract_w3c(metadata or ())
    trace_id, span_id = int(match[1], 16), int(match[2], 16)
    if not trace_id or not span_id:
        return _NO_PARENT
    remote = SpanContext(trace_id, span_id, True, TraceFlags(int(match[3], 16)))
    return trace.set_span_in_context(NonRecordingSpan(remote), _NO_PARENT)


def _extract_w3c(metadata: Collection[tuple[str, Any]]) -> Context:
    carrier: dict[str, list[str]] = {}
    for key, value in metadata:
        if key in _TRACE_KEYS and isinstance(value, str):
            carrier.setdefault(key, []).append(value)
    return _W3C.extract(carrier)
