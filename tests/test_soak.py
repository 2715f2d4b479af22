"""A 5-minute soak: a bounded load while a provider is restarted every 30 s; this
consumer's memory, file descriptors, tasks and channels must end where they began."""

import asyncio
import contextlib
import gc
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
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


def open_channels() -> int:
    """grpc.aio channels alive in this process (the stubs' GovernedChannels aside)."""
    gc.collect()
    return sum(
        isinstance(o, grpc.aio.Channel) and not isinstance(o, csf.GovernedChannel)
        for o in gc.get_objects()
    )


def connections_to(ports: set[int]) -> int:
    """This process's established TCP connections to any of `ports` on 127.0.0.1."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target.removeprefix("socket:[").removesuffix("]"))
    count = 0
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/self/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            established = fields[3] == "01"
            count += established and fields[9] in inodes and remote_port in ports
    return count


def resources(provider_ports: set[int]) -> dict[str, int]:
    status = Path("/proc/self/status").read_text().splitlines()
    rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return {
        "rss_kib": rss,
        "fds": len(os.listdir("/proc/self/fd")),
        "tasks": len(asyncio.all_tasks()),
        "python_objects": len(gc.get_objects()),
        "channels": open_channels(),
        "provider_connections": connections_to(provider_ports),
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
        ports = {int(p.address.rsplit(":", 1)[1]) for p in live}  # every provider ever started
        start = resources(ports)

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
            ports.add(int(live[-1].address.rsplit(":", 1)[1]))
            restarts += 1
        await load
        await wait_until(converged, 15, "the view after the last restart")
        await paced(lambda: say_hello(stub), RATE, 2)  # every live provider's channel in use
        end = resources(ports)

    figures.append(f"soak {SOAK_SECONDS}s, {restarts} restarts: {result.summary()}")
    figures.append(f"soak resources at start {start}, at end {end}")
    assert restarts >= 8
    assert result.failed <= result.offered // 1000, result.summary()
    # Channels other tests of this process left for the collector count at both ends alike.
    assert end["channels"] == start["channels"], "no channel of a departed provider kept"
    assert end["provider_connections"] == start["provider_connections"] == 3
    assert end["fds"] <= start["fds"] + 8
    assert end["tasks"] <= start["tasks"] + 5
    assert end["rss_kib"] <= start["rss_kib"] + 30 * 1024
    assert end["python_objects"] <= start["python_objects"] * 1.1
    assert "too_many_pings" not in capfd.readouterr().err
