"""`sampler_ratio` decides which calls are traced when CSF builds the tracer provider for
an exporter. The provider here traces with the default parent-based sampler, so it
records a SERVER span exactly for the calls the consumer's sampler kept."""

import asyncio
import functools
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace import export as sdk_export
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import csf
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from tests.conftest import consumer_for, greeter_server


@pytest.fixture(autouse=True)
def quiet_console_exporter(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real console exporter, writing to a buffer instead of the test's stdout."""
    exporter = functools.partial(sdk_export.ConsoleSpanExporter, out=io.StringIO())
    monkeypatch.setattr(sdk_export, "ConsoleSpanExporter", exporter)


@pytest.fixture
def server_spans() -> Iterator[tuple[InMemorySpanExporter, csf.Observability]]:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    yield spans, csf.Observability(tracer_provider=provider, metrics=False)
    provider.shutdown()


async def sampled_calls(
    zookeeper: LocalZooKeeper,
    tenant: str,
    work: Path,
    server_spans: tuple[InMemorySpanExporter, csf.Observability],
    ratio: float,
    calls: int,
) -> int:
    """Make `calls` calls from a consumer sampling at `ratio`; how many the provider traced."""
    spans, provider_observability = server_spans
    spans.clear()
    observability = csf.Observability(exporter="console", sampler_ratio=ratio, metrics=False)
    async with (
        greeter_server(zookeeper.url, tenant, observability=provider_observability),
        consumer_for(zookeeper.url, tenant, work / str(ratio), "web", observability) as consumer,
    ):
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5)
        for _ in range(calls // 20):
            batch = [stub.SayHello(greeter_pb2.HelloRequest(name="x")) for _ in range(20)]
            assert len(await asyncio.gather(*batch)) == 20
    server = [span for span in spans.get_finished_spans() if span.kind is SpanKind.SERVER]
    return len(server)


async def test_a_ratio_of_zero_traces_no_call_and_a_ratio_of_one_traces_every_call(
    zookeeper: LocalZooKeeper,
    tenant: str,
    tmp_path: Path,
    server_spans: tuple[InMemorySpanExporter, csf.Observability],
) -> None:
    never = await sampled_calls(zookeeper, tenant, tmp_path, server_spans, 0.0, 60)
    always = await sampled_calls(zookeeper, tenant, tmp_path, server_spans, 1.0, 60)
    assert (never, always) == (0, 60)


async def test_a_ratio_of_one_half_traces_about_half_the_calls(
    zookeeper: LocalZooKeeper,
    tenant: str,
    tmp_path: Path,
    server_spans: tuple[InMemorySpanExporter, csf.Observability],
) -> None:
    traced = await sampled_calls(zookeeper, tenant, tmp_path, server_spans, 0.5, 400)
    # Binomial(400, 0.5): mean 200, standard deviation 10; the band is 8 of them wide.
    assert 120 <= traced <= 280
