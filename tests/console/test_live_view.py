"""The service page's live view, in a browser: a real provider's metrics scraped from the
port it announces, and providers joining and leaving on the open page."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

from playwright.async_api import Page

import csf
from csf.testing.zookeeper import LocalZooKeeper, free_port
from demo import greeter_pb2, greeter_pb2_grpc
from demo.providers import Greeter
from tests.conftest import consumer_for, greeter_server, wait_until
from tests.console.conftest import Console, Operator
from tests.console.pages import LoginPage, ServiceLivePage

RATE = re.compile(r"^(\d+\.\d)/s$")
MS = re.compile(r"^\d+\.\d ms$")
MAX_CALLS, MAX_SECONDS = 6000, 60.0  # the load's bounds: ~100 calls/s for the test's span


@contextlib.asynccontextmanager
async def calling(consumer: csf.Consumer) -> AsyncIterator[list[int]]:
    """Calls SayHello over and over until the block ends (at most MAX_CALLS, for at most
    MAX_SECONDS); yields the count made."""
    stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR")
    made = [0]
    deadline = time.monotonic() + MAX_SECONDS

    async def call() -> None:
        while made[0] < MAX_CALLS and time.monotonic() < deadline:
            await stub.SayHello(greeter_pb2.HelloRequest(name="ops"))
            made[0] += 1
            await asyncio.sleep(0.01)  # a steady trickle of calls, not a busy loop

    task = asyncio.create_task(call())
    try:
        yield made
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_the_service_page_charts_scraped_calls_and_shows_providers_come_and_go(
    page: Page, console: Console, operator: Operator, zookeeper: LocalZooKeeper, tmp_path: Path
) -> None:
    registry = f"{zookeeper.url}?{operator.url_digest}"
    observability = csf.Observability(prometheus_port=free_port(), tracing=False)
    provider = csf.Server(registry=registry, tenant=operator.tenant, deregister_wait=0,
                          handle_signals=False, observability=observability)  # fmt: skip
    provider.add(Greeter(lambda: ""))
    # The consumer measures into the same process's endpoint: its breaker gauge shows.
    consumer = consumer_for(registry, operator.tenant, tmp_path, "web", observability)
    async with provider, consumer, calling(consumer) as made:
        await wait_until(lambda: made[0] > 0, 10, "the first call")
        await LoginPage(page, console.url).log_in_as(operator)
        live = ServiceLivePage(page, console.url)
        await live.open("XIESR")
        address = provider.address

        async def calls_shown() -> bool:
            rate = RATE.match(await live.figure("calls"))
            return rate is not None and float(rate[1]) > 0

        await wait_until(calls_shown, 5, "a calls/s figure above zero")
        assert (await live.health())[address] == "up"
        assert await live.figure("errors") == "0.0%"
        assert MS.match(await live.figure("p50")), await live.figure("p50")
        assert MS.match(await live.figure("p99")), await live.figure("p99")
        assert await live.breaker() == "closed"
        assert await live.chart_points("calls")

        # In a cluster of its own: the consumer's calls never meet it as it leaves.
        joining = greeter_server(registry, operator.tenant, cluster="joiners")
        async with joining:
            joined = joining.address

            async def has_joined() -> bool:
                return (await live.health()).get(joined) == "no metrics"

            await wait_until(has_joined, 2, "the joining provider, announcing no metrics")

        async def has_left() -> bool:
            return joined not in await live.health()

        await wait_until(has_left, 2, "the provider that left")
        assert (await live.health())[address] == "up"

        async def charted() -> bool:
            return len((await live.chart_points("calls")).split()) >= 3

        await wait_until(charted, 5, "three intervals on the calls chart")
        await live.screenshot("service")
