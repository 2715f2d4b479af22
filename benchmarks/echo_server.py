"""The benchmark's provider: the demo Greeter served raw, through CSF, or CSF with tracing.

    python benchmarks/echo_server.py --mode raw|csf|traced [--registry URL] [--tenant T]
        [--loop asyncio|uvloop]

Prints 'serving HOST:PORT' when ready and runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Callable, Sequence

import grpc
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

import csf
from demo import greeter_pb2_grpc
from demo.providers import Greeter


class Nowhere(SpanExporter):
    """Takes every batch and drops it: tracing's cost without an exporter's."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def traced(ratio: float = 1.0) -> csf.Observability:
    """Tracing into an exporter that drops spans, sampling `ratio` of new traces (a call
    with a parent follows the parent's choice)."""
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(ratio)))
    provider.add_span_processor(BatchSpanProcessor(Nowhere()))
    return csf.Observability(tracer_provider=provider, metrics=False)


async def serve_raw() -> None:
    server = grpc.aio.server()
    port = server.add_insecure_port("127.0.0.1:0")
    greeter_pb2_grpc.add_GreeterServicer_to_server(Greeter(lambda: f"127.0.0.1:{port}"), server)
    await server.start()
    print(f"serving 127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(0)


async def serve_csf(registry: str, tenant: str, observability: csf.Observability) -> None:
    server = csf.Server(registry=registry, tenant=tenant, observability=observability,
                        deregister_wait=0)  # fmt: skip
    server.add(Greeter(lambda: server.address))
    async with server:
        print(f"serving {server.address}", flush=True)
        await server.wait_closed()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("raw", "csf", "traced"), required=True)
    parser.add_argument("--registry", default="static://127.0.0.1:1")
    parser.add_argument("--tenant", default="Bench")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = parser.parse_args()
    off = csf.Observability(tracing=False, metrics=False)
    observability = traced() if args.mode == "traced" else off
    with asyncio.Runner(loop_factory=loop_factory(args.loop)) as runner:
        if args.mode == "raw":
            runner.run(serve_raw())
        else:
            runner.run(serve_csf(args.registry, args.tenant, observability))


def loop_factory(loop: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """What makes the event loop `loop` names; None: asyncio's own."""
    if loop == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return None


if __name__ == "__main__":
    main()
