"""Log correlation: every log record carries `trace_id` and `span_id` of the active span."""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry import trace

_installed = False


def correlate_logs() -> None:
    """Give log records `trace_id`/`span_id` (hex; "" when no span is active). Idempotent.

    It wraps the logging record factory, so records of every logger carry them, and a
    format such as `%(trace_id)s` works in any handler.
    """
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        else:
            record.trace_id = record.span_id = ""
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
