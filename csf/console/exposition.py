"""What the console reads of an instance's `/metrics` text (Prometheus' text format).

The text comes from whatever process announced the port, so it is outside data: any text
gives a `Reading` of bounded figures, or None when it cannot be read, never an
exception. Of it only one service's figures count (a process may serve several, and
its endpoint shows everything it measures): the provider side's calls by status code
and their duration histogram, and the consumer side's breaker gauge when the process
calls the service too (providers export no breaker of their own).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

# The names the OpenTelemetry Prometheus exporter gives csf.server.calls,
# csf.server.duration (in seconds) and csf.client.breaker.state; dots become underscores.
CALLS = "csf_server_calls_total"
DURATION_BUCKET = "csf_server_duration_seconds_bucket"
BREAKER = "csf_client_breaker_state"
SERVICE_LABEL = "csf_service"
CODE_LABEL = "rpc_grpc_status_code"
OK_CODE = "0"
BREAKER_STATES = (0.0, 1.0, 2.0)  # closed, half-open, open

MAX_COUNT = 1e15  # a counter beyond this is no CSF counter: clamped
MAX_BOUNDS = 64  # histogram bucket bounds kept; CSF's have 16
MAX_SAMPLES = 200_000  # what 2 MB of text can hold and more: the rest is not read


@dataclass(frozen=True)
class Reading:
    """One instance's counters for one service at the moment it was scraped."""

    calls: float
    """Calls handled, every method and status code."""
    errors: float
    """Of those, the ones that ended with a status other than OK."""
    buckets: Mapping[float, float]
    """Duration histogram: upper bound in seconds (inf included) -> calls at most that."""
    breaker: int | None
    """The worst breaker state the process reports for the service (0 closed,
    1 half-open, 2 open); None: it reports none."""


def read(text: str, service: str) -> Reading | None:
    """The figures of `service` in `text`; None when the text is not Prometheus text."""
    try:
        return _read(text, service)
    except Exception:  # the parser raises whatever its string handling meets on bad input
        return None


def _read(text: str, service: str) -> Reading | None:
    calls = errors = 0.0
    buckets: dict[float, float] = {}
    breaker: int | None = None
    samples = 0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples += 1
            if samples > MAX_SAMPLES:
                return None
            if sample.labels.get(SERVICE_LABEL) != service:
                continue
            value = _count(sample.value)
            if value is None:
                continue
            if sample.name == CALLS:
                calls += value
                if sample.labels.get(CODE_LABEL) != OK_CODE:
                    errors += value
            elif sample.name == DURATION_BUCKET:
                bound = _bound(sample.labels.get("le"))
                if bound is not None and (bound in buckets or len(buckets) < MAX_BOUNDS):
                    buckets[bound] = min(MAX_COUNT, buckets.get(bound, 0.0) + value)
            elif sample.name == BREAKER and value in BREAKER_STATES:
                breaker = max(breaker or 0, int(value))
    calls = min(calls, MAX_COUNT)
    return Reading(calls, min(errors, calls), buckets, breaker)


def _count(value: object) -> float | None:
    """A sample's value if it is a count CSF could have made (finite, not negative)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    number = float(value)
    if not math.isfinite(number) or number < 0:
        return None
    return min(number, MAX_COUNT)


def _bound(text: str | None) -> float | None:
    """A bucket's `le`: seconds, not negative; +Inf for the last bucket."""
    if text is None or len(text) > 32:
        return None
    try:
        bound = float(text)
    except ValueError:
        return None
    return bound if bound >= 0 and not math.isnan(bound) else None
