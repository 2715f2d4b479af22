"""Tracer and meter providers: the application's, or private ones CSF builds when asked."""

from __future__ import annotations

from typing import Protocol

from opentelemetry import metrics, trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from csf._exceptions import ConfigError


class ExportSettings(Protocol):
    """What building providers reads of csf.Observability."""

    @property
    def exporter(self) -> str: ...
    @property
    def sampler_ratio(self) -> float: ...
    @property
    def install_global(self) -> bool: ...
    @property
    def prometheus_host(self) -> str: ...
    @property
    def prometheus_port(self) -> int | None: ...


# One scrape endpoint (and meter provider) per address for the whole process.
_prometheus: dict[tuple[str, int], MeterProvider] = {}


def _global_tracer_provider() -> TracerProvider | None:
    provider = trace.get_tracer_provider()
    return None if isinstance(provider, trace.ProxyTracerProvider) else provider


def _global_meter_provider() -> MeterProvider | None:
    # The API hands out a proxy until the application sets a provider.
    from opentelemetry.metrics._internal import _ProxyMeterProvider

    provider = metrics.get_meter_provider()
    return None if isinstance(provider, _ProxyMeterProvider) else provider


def tracer_provider(config: ExportSettings, service_name: str) -> TracerProvider | None:
    if config.exporter == "none":
        return _global_tracer_provider()
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    exporter: SpanExporter
    if config.exporter == "console":
        exporter = ConsoleSpanExporter()
    else:
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise ConfigError(
                "exporter: 'otlp' needs the package opentelemetry-exporter-otlp"
            ) from None
        exporter = OTLPSpanExporter()
    provider = SdkTracerProvider(
        sampler=ParentBased(TraceIdRatioBased(config.sampler_ratio)),
        resource=Resource.create({"service.name": service_name}),
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    if config.install_global:
        trace.set_tracer_provider(provider)
    return provider


def meter_provider(config: ExportSettings, service_name: str) -> MeterProvider | None:
    if config.prometheus_port is None:
        return _global_meter_provider()
    address = (config.prometheus_host, config.prometheus_port)
    provider = _prometheus.get(address)
    if provider is None:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
        from opentelemetry.sdk.resources import Resource
        from prometheus_client import start_http_server

        try:
            start_http_server(config.prometheus_port, addr=config.prometheus_host)
        except OSError as error:  # taken, not ours, unknown host
            reason = error.strerror or error
            raise ConfigError(
                f"prometheus_port: cannot serve metrics on "
                f"{config.prometheus_host}:{config.prometheus_port}: {reason}"
            ) from None
        provider = SdkMeterProvider(
            metric_readers=[PrometheusMetricReader()],
            resource=Resource.create({"service.name": service_name}),
        )
        _prometheus[address] = provider
    if config.install_global:
        metrics.set_meter_provider(provider)
    return provider
