"""Call durations are recorded in seconds, into buckets that fit RPC latency."""

import asyncio
import math
from pathlib import Path
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import csf
from csf.observability.instruments import DURATION_BUCKETS
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from demo.providers import Greeter
from tests.conftest import consumer_for
from tests.observability.memory import metric_points

HANDLER_DELAY = 0.02


@csf.provider(service="XIESR", warmup=0)
class SlowGreeter(Greeter):
    async def SayHello(self, request: Any, context: Any) -> Any:
        await asyncio.sleep(HANDLER_DELAY)
        return greeter_pb2.HelloReply(message="hi")


async def test_a_call_s_duration_lands_in_the_seconds_bucket_that_holds_it(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    telemetry = csf.Observability(tracing=False, meter_provider=meters)
    server = csf.Server(
        registry=zookeeper.url, tenant=tenant, deregister_wait=0, handle_signals=False,
        observability=telemetry,
    )  # fmt: skip
    server.add(SlowGreeter(lambda: ""))
    try:
        async with (
            server,
            consumer_for(zookeeper.url, tenant, tmp_path, "web", telemetry) as consumer,
        ):
            stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR")
            await stub.SayHello(greeter_pb2.HelloRequest(name="ann"))
            for side in ("client", "server"):
                (point,) = metric_points(reader, f"csf.{side}.duration")
                assert tuple(point.explicit_bounds) == DURATION_BUCKETS, side
                assert point.count == 1 and point.sum >= HANDLER_DELAY, side
                (index,) = [i for i, count in enumerate(point.bucket_counts) if count]
                bounds = (0.0, *DURATION_BUCKETS, math.inf)
                # The one bucket holding the call is the one its duration falls in: a
                # 20 ms call in (0.01, 0.025] or a little above, never in (0, 5].
                assert bounds[index] < point.sum <= bounds[index + 1], (side, point.sum)
                assert bounds[index] >= 0.01 and bounds[index + 1] <= 1.0, (side, index)
    finally:
        meters.shutdown()
