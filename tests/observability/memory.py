"""OpenTelemetry's SDK with in-memory exporters, for tests that read back spans and metrics."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import csf
from csf.testing.zookeeper import LocalZooKeeper


def metric_points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    """Every data point of metric `name` that `reader` holds now."""
    data = reader.get_metrics_data()
    if data is None:  # nothing recorded yet
        return []
    return [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


@dataclass
class Telemetry:
    spans: InMemorySpanExporter
    reader: InMemoryMetricReader
    config: csf.Observability

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def points(self, name: str) -> list[Any]:
        return metric_points(self.reader, name)


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    config = csf.Observability(tracer_provider=tracer_provider, meter_provider=meter_provider)
    yield Telemetry(spans, reader, config)
    meter_provider.shutdown()
    tracer_provider.shutdown()


def server(
    zookeeper: LocalZooKeeper, tenant: str, servicer: Any, telemetry: Telemetry
) -> csf.Server:
    instance = csf.Server(
        registry=zookeeper.url, tenant=tenant, deregister_wait=0, handle_signals=False,
        observability=telemetry.config,
    )  # fmt: skip
    instance.add(servicer)
    return instance
