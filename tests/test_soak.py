"""A 5-minute soak: a bounded load while a provider is restarted every 30 s; this
consumer's memory, file descriptors, tasks and channels must end where they began."""

import asyncio
import gc
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

import csf
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from tests.conftest import ProviderProcess, consumer_for, wait_until
from tests.load import LoadResult, paced

StartProvider = Callable[..., Awaitable[ProviderProcess]]
RATE, SOAK_SECONDS, RESTART_EVERY = 50, 300, 30
pytestmark = [pytest.mark.slow, pytest.mark.timeout(SOAK_SECONDS + 180)]
IDEMPOTENT = {"SayHello": csf.MethodConfig(idempotent=True)}


async def say_hello(stub: greeter_pb2_grpc.GreeterStub) -> None:
    """One call, its reply dropped: 15,000 kept replies would read as growth."""
    await stub.SayHello(greeter_pb2.HelloRequest(name="soak"))


def resources(directory_channels: int) -> dict[str, int]:
    status = Path("/proc/self/status").read_text().splitlines()
    rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return {
        "rss_kib": rss,
        "fds": len(os.listdir("/proc/self/fd")),
        "tasks": len(asyncio.all_tasks()),
        "python_objects": len(gc.get_objects()),
        "channels": directory_channels,
    }


async def test_soak_with_a_provider_restarted_every_30s_ends_flat(
    zookeeper: LocalZooKeeper,
    tenant: str,
    tmp_path: Path,
    providers: StartProvider,
    figures: list[str],
    capfd: pytest.CaptureFixture[str],
) -> None:
    registry = f"{zookeeper.url}?session_timeout=2"
    live = [await providers(registry, tenant) for _ in range(3)]
    async with consumer_for(zookeeper.url, tenant, tmp_path) as consumer:
        stub = consumer.stub(
            greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=2, methods=IDEMPOTENT
        )
        directory = consumer.directory("XIESR")

        def converged() -> bool:
            return set(directory.endpoints) == {p.address for p in live}

        await wait_until(converged, 15, "three providers")
        await paced(lambda: stub.SayHello(greeter_pb2.HelloRequest(name="warm")), RATE, 5)
        start = resources(len(directory.endpoints))

        result = LoadResult()
        load = asyncio.ensure_future(paced(lambda: say_hello(stub), RATE, SOAK_SECONDS, result))
        restarts = 0
        while not load.done() and restarts < SOAK_SECONDS // RESTART_EVERY - 1:
            await asyncio.wait({load}, timeout=RESTART_EVERY)
            if load.done():
                break
            old = live.pop(0)
            # Alternate a graceful stop and a crash.
            old.signal(signal.SIGTERM if restarts % 2 == 0 else signal.SIGKILL)
            await asyncio.wait_for(old.process.wait(), 30)
            live.append(await providers(registry, tenant))
            restarts += 1
        await load
        await wait_until(converged, 15, "the view after the last restart")
        end = resources(len(directory.endpoints))

    figures.append(f"soak {SOAK_SECONDS}s, {restarts} restarts: {result.summary()}")
    figures.append(f"soak resources at start {start}, at end {end}")
    assert restarts >= 8
    assert result.failed <= result.offered // 1000, result.summary()
    assert end["channels"] == start["channels"] == 3
    assert end["fds"] <= start["fds"] + 8
    assert end["tasks"] <= start["tasks"] + 5
    assert end["rss_kib"] <= start["rss_kib"] + 30 * 1024
    assert end["python_objects"] <= start["python_objects"] * 1.1
    assert "too_many_pings" not in capfd.readouterr().err
