"""Observability: OpenTelemetry traces and metrics on both sides, and correlated logs.

`Observability` is the configuration a Consumer or Server takes. CSF uses the tracer and
meter providers given to it, else the application's global ones when it has set them;
it builds a private SDK provider only for an exporter it is asked for (`exporter=`,
`prometheus_port=`), and installs nothing globally unless `install_global=True`.
With tracing off the tracing filters are not in the chain at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

# Aliased: the submodules csf.observability.metrics and .tracing would shadow the names.
from opentelemetry import metrics as otel_metrics
from opentelemetry import trace as otel_trace
from opentelemetry.metrics import Meter, MeterProvider
from opentelemetry.trace import Tracer, TracerProvider

from csf import bounds
from csf._exceptions import ConfigError
from csf.observability.instruments import Instruments
from csf.observability.logs import correlate_logs

logger = logging.getLogger("csf.observability")

EXPORTERS = ("none", "console", "otlp")
INSTRUMENTATION = "csf"


@dataclass(frozen=True, kw_only=True)
class Observability:
    """How CSF traces and measures; the defaults follow what the application has set up.

    - `tracing`, `metrics`: on, off, or None (on when a provider is given, set globally by
      the application, or built for an exporter).
    - `sampler_ratio`, `exporter` ("none", "console", "otlp"): for the tracer provider CSF
      builds when the application has none; "otlp" needs opentelemetry-exporter-otlp.
    - `prometheus_port`: serve CSF's metrics for scraping on `prometheus_host` (opt-in).
    - `log_correlation`: add `trace_id` and `span_id` to log records while a span is active.
    """

    tracing: bool | None = None
    metrics: bool | None = None
    sampler_ratio: float = 1.0
    exporter: str = "none"
    prometheus_port: int | None = None
    prometheus_host: str = "127.0.0.1"
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    install_global: bool = False
    log_correlation: bool = True

    def __post_init__(self) -> None:
        if self.exporter not in EXPORTERS:
            raise ConfigError(f"exporter: {self.exporter!r} is not one of {', '.join(EXPORTERS)}")
        if not 0 <= self.sampler_ratio <= 1:
            raise ConfigError(f"sampler_ratio: expected 0 to 1, got {self.sampler_ratio!r}")
        if self.prometheus_port is not None:
            bounds.PORT.check_whole("prometheus_port", self.prometheus_port, ConfigError)

    def resolve(self, service_name: str) -> Telemetry:
        """The tracer and instruments to use; builds exporters and providers it was asked for."""
        from csf.observability import providers

        tracer_provider = self.tracer_provider or providers.tracer_provider(self, service_name)
        meter_provider = self.meter_provider or providers.meter_provider(self, service_name)
        tracing = self.tracing if self.tracing is not None else tracer_provider is not None
        measuring = self.metrics if self.metrics is not None else meter_provider is not None
        tracer = (tracer_provider or otel_trace.get_tracer_provider()).get_tracer(INSTRUMENTATION)
        meter = (meter_provider or otel_metrics.get_meter_provider()).get_meter(INSTRUMENTATION)
        if tracing and self.log_correlation:
            correlate_logs()
        return Telemetry(
            tracer=tracer if tracing else None,
            meter=meter if measuring else None,
            instruments=Instruments.of(meter) if measuring else None,
        )


@dataclass(frozen=True)
class Telemetry:
    """What the filters and guards use: absent parts are switched off."""

    tracer: Tracer | None
    meter: Meter | None
    instruments: Instruments | None


OFF = Telemetry(None, None, None)

__all__ = ["OFF", "Observability", "Telemetry", "correlate_logs"]
