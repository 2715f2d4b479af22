"""CSF's metric instruments, created once per meter and shared by all who use it.

Sharing matters: a meter keeps the first instrument of a name, so a second set would
record into the first set's counters but its gauge callbacks would never be called.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry.metrics import CallbackOptions, Histogram, Meter, Observation

Gauge = Callable[[], Iterable[tuple[float, dict[str, Any]]]]

# Call durations in seconds, 0.5 ms to 30 s: the SDK's default buckets (0 to 10,000)
# assume milliseconds and would put nearly every RPC in the first one or two.
DURATION_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip


def _duration(meter: Meter, name: str, description: str) -> Histogram:
    return meter.create_histogram(
        name, "s", description, explicit_bucket_boundaries_advisory=DURATION_BUCKETS
    )


_shared: weakref.WeakKeyDictionary[Meter, Instruments] = weakref.WeakKeyDictionary()


class Instruments:
    @classmethod
    def of(cls, meter: Meter) -> Instruments:
        """The instruments of `meter`, made on first use."""
        found = _shared.get(meter)
        if found is None:
            found = _shared[meter] = cls(meter)
        return found

    def __init__(self, meter: Meter) -> None:
        self.client_calls = meter.create_counter(
            "csf.client.calls", "{call}", "Calls finished, by status code"
        )
        self.client_duration = _duration(
            meter, "csf.client.duration", "Duration of calls, retries and fallbacks included"
        )
        self.client_active = meter.create_up_down_counter(
            "csf.client.active_calls", "{call}", "Calls in flight"
        )
        self.client_retries = meter.create_counter("csf.client.retries", "{attempt}", "Retries")
        self.client_fallbacks = meter.create_counter(
            "csf.client.fallbacks", "{call}", "Calls answered by a fallback"
        )
        self.client_rejected = meter.create_counter(
            "csf.client.rejected", "{call}", "Calls CSF refused, by what refused them"
        )
        self.server_calls = meter.create_counter(
            "csf.server.calls", "{call}", "Calls handled, by status code"
        )
        self.server_duration = _duration(meter, "csf.server.duration", "Duration of handled calls")
        self.server_active = meter.create_up_down_counter(
            "csf.server.active_calls", "{call}", "Handlers running"
        )
        self.registry_rejected = meter.create_counter(
            "csf.registry.rejected",
            "{item}",
            "Registry items refused (bad data, unreadable, foreign ACL), once per version",
        )
        self._gauges: dict[str, list[Gauge]] = {"breaker": [], "providers": []}
        meter.create_observable_gauge(
            "csf.client.breaker.state",
            callbacks=[self._observer("breaker")],
            description="Circuit breaker state: 0 closed, 1 half-open, 2 open",
        )
        meter.create_observable_gauge(
            "csf.client.providers",
            callbacks=[self._observer("providers")],
            description="Providers in the consumer's view, per service cluster",
        )

    def _observer(self, name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            for gauge in self._gauges[name]:
                for value, attributes in gauge():
                    yield Observation(value, attributes)

        return observe

    def watch(self, name: str, gauge: Gauge) -> Callable[[], None]:
        """Report `gauge`'s readings under the gauge `name` ("breaker", "providers");
        returns the function that stops it."""
        gauges = self._gauges[name]
        gauges.append(gauge)
        return lambda: gauges.remove(gauge)
