"""Provider processes joining and dying, as a consumer sees them."""

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from kazoo.client import KazooClient

import csf
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from tests.conftest import ProviderProcess, wait_until

StartProvider = Callable[..., Awaitable[ProviderProcess]]
SESSION_TIMEOUT = 2


async def test_a_joining_provider_gets_calls_and_a_killed_one_is_dropped(
    zookeeper: LocalZooKeeper,
    kazoo: KazooClient,
    tenant: str,
    tmp_path: Path,
    providers: StartProvider,
    figures: list[str],
) -> None:
    registry = f"{zookeeper.url}?session_timeout={SESSION_TIMEOUT}"
    first = await providers(registry, tenant)
    async with csf.Consumer(
        registry=zookeeper.url, tenant=tenant, app="test", snapshot_dir=tmp_path
    ) as consumer:
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=2)
        directory = consumer.directory("XIESR")

        async def served_by(count: int) -> set[str]:
            replies = [
                await stub.SayHello(greeter_pb2.HelloRequest(name="x")) for _ in range(count)
            ]
            return {reply.served_by for reply in replies}

        assert await served_by(4) == {first.address}
        second = await providers(registry, tenant)
        await wait_until(lambda: second.address in directory.endpoints, 10, "the joiner")
        assert await served_by(4) == {first.address, second.address}

        znode = f"/busidomain/csf/{tenant}/XIESR/clusters/defaultCluster/normal/{second.address}"
        assert await asyncio.to_thread(kazoo.exists, znode) is not None
        second.signal(signal.SIGKILL)
        killed_at = time.monotonic()
        await wait_until(lambda: second.address not in directory.endpoints, 30, "the drop")
        took = time.monotonic() - killed_at
        figures.append(f"SIGKILLed provider dropped from the view {took:.2f}s after the kill "
              f"(session timeout {SESSION_TIMEOUT}s)")  # fmt: skip
        # The view follows ZooKeeper: the provider left it only once its session expired.
        assert await asyncio.to_thread(kazoo.exists, znode) is None, "dropped before its znode"
        assert await served_by(4) == {first.address}
