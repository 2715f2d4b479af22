"""The official OpenTelemetry gRPC instrumentation on plain grpc.aio, as a peer for CSF's tracing.

    python benchmarks/otel_peer.py

Serves the demo Greeter on a grpc.aio server with `aio_server_interceptor()`, prints
'serving HOST:PORT' when ready and runs until SIGTERM. `client_channel(address)` is the
matching client: a grpc.aio channel with `aio_client_interceptors()`. Each side has its
own tracer provider sampling every call into a batching processor whose exporter drops
the spans (echo_server.Nowhere), as CSF's traced variant does.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

import grpc
from echo_server import Nowhere
from opentelemetry.instrumentation.grpc import aio_client_interceptors, aio_server_interceptor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from demo import greeter_pb2_grpc
from demo.providers import Greeter


def tracer_provider() -> TracerProvider:
    """Every call sampled (the default sampler), every span batched and dropped."""
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Nowhere()))
    return provider


def client_channel(address: str) -> grpc.aio.Channel:
    """A channel to `address` traced by the official client interceptors."""
    interceptors = aio_client_interceptors(tracer_provider=tracer_provider())
    return grpc.aio.insecure_channel(address, interceptors=interceptors)


async def serve(ready: Callable[[str], None] = lambda line: print(line, flush=True)) -> None:
    """Serve the Greeter, traced by the official server interceptor, until SIGTERM;
    `ready` hears 'serving HOST:PORT' once it takes calls."""
    server = grpc.aio.server(interceptors=[aio_server_interceptor(tracer_provider())])
    port = server.add_insecure_port("127.0.0.1:0")
    greeter_pb2_grpc.add_GreeterServicer_to_server(Greeter(lambda: f"127.0.0.1:{port}"), server)
    await server.start()
    ready(f"serving 127.0.0.1:{port}")
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(0)


if __name__ == "__main__":
    asyncio.run(serve())
