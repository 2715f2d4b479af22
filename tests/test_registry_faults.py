"""ZooKeeper faults under load: a leader killed in a real ensemble, a provider's link
blackholed past its session timeout, and registration churn."""

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from kazoo.client import KazooClient

import csf
from csf.registry import Instance
from csf.testing.zookeeper import LocalZooKeeper, ZooKeeperEnsemble
from demo import greeter_pb2, greeter_pb2_grpc
from tests.conftest import ProviderProcess, consumer_for, greeter_server, wait_until, zk_registry
from tests.faultproxy import FaultProxy
from tests.load import LoadResult, paced

pytestmark = pytest.mark.slow

StartProvider = Callable[..., Awaitable[ProviderProcess]]
IDEMPOTENT = {"SayHello": csf.MethodConfig(idempotent=True)}


def connected(hosts: str) -> KazooClient:
    client = KazooClient(hosts=hosts)
    client.start(timeout=15)
    return client


def finish(client: KazooClient) -> None:
    client.stop()
    client.close()


async def test_killing_the_ensemble_leader_fails_no_call_and_the_registry_goes_on(
    tmp_path: Path, tenant: str, providers: StartProvider, figures: list[str]
) -> None:
    ensemble = ZooKeeperEnsemble(tmp_path / "ensemble")
    await asyncio.to_thread(ensemble.start)
    try:
        registry = f"{ensemble.url}?session_timeout=4"
        started = [await providers(registry, tenant) for _ in range(2)]
        async with consumer_for(registry, tenant, tmp_path / "consumer") as consumer:
            stub = consumer.stub(
                greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=2, methods=IDEMPOTENT
            )
            directory = consumer.directory("XIESR")
            addresses = {p.address for p in started}
            await wait_until(lambda: set(directory.endpoints) == addresses, 15, "both providers")

            result = LoadResult()
            load = asyncio.ensure_future(
                paced(lambda: stub.SayHello(greeter_pb2.HelloRequest(name="x")), 100, 10, result)
            )
            await wait_until(lambda: result.offered >= 200, 10, "the load under way")
            leader = ensemble.leader()
            assert leader is not None
            await asyncio.to_thread(leader.kill)
            took = await wait_until(lambda: ensemble.leader() is not None, 30, "a new leader")
            await load
            figures.append(f"ensemble leader killed: new leader in {took:.2f}s; {result.summary()}")
            assert result.failed == 0 and result.ok == result.offered

            # Registrations and watches carry on through the new leader.
            newcomer = await providers(registry, tenant)
            addresses.add(newcomer.address)
            await wait_until(lambda: set(directory.endpoints) == addresses, 15, "the newcomer")
            admin = await asyncio.to_thread(connected, ensemble.hosts)
            try:
                rule = json.dumps({"schema": 1, "min_calls": 7}).encode()
                path = f"/busidomain/csf/{tenant}/XIESR/configs/breaker"
                await asyncio.to_thread(admin.create, path, rule, makepath=True)
            finally:
                await asyncio.to_thread(finish, admin)
            rules = consumer.rules("XIESR")
            await wait_until(
                lambda: getattr(rules.current.get("breaker"), "min_calls", None) == 7,
                15,
                "the rule pushed after the election",
            )
    finally:
        await asyncio.to_thread(ensemble.stop)


async def test_a_blackholed_provider_session_expires_and_it_registers_again(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, figures: list[str]
) -> None:
    proxy = FaultProxy("127.0.0.1", zookeeper.port)
    await proxy.start()
    try:
        registry = f"zk://{proxy.address}?session_timeout=2"
        async with greeter_server(registry, tenant) as server:
            session = zk_registry(server)
            old_session = session.session_id
            path = server.registrations[0].path

            def owner() -> int | None:
                stat = kazoo.exists(path)
                return None if stat is None else int(stat.ephemeralOwner)

            assert await asyncio.to_thread(owner) == old_session
            proxy.blackhole()
            gone = await wait_until(
                lambda: asyncio.to_thread(lambda: owner() is None), 20, "the session to expire"
            )
            proxy.heal()
            healed = time.monotonic()

            async def registered_anew() -> bool:
                current = await asyncio.to_thread(owner)
                return current is not None and current == session.session_id != old_session

            await wait_until(registered_anew, 30, "re-registration under a new session")
            figures.append(
                f"blackholed ZooKeeper link: node gone after {gone:.1f}s, back under a new "
                f"session {time.monotonic() - healed:.2f}s after the link healed"
            )
    finally:
        await proxy.close()


async def test_churn_of_50_changes_a_second_then_every_view_equals_zookeeper(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path,
    figures: list[str],
) -> None:  # fmt: skip
    group = f"/busidomain/csf/{tenant}/XIESR/clusters/defaultCluster/normal"
    # Ports nobody listens on: the consumers never call them, only list them.
    ports = list(range(40_000, 40_200))
    stable = ports[:5]  # never removed, so no push is ever empty

    def create(port: int) -> None:
        instance = Instance(host="127.0.0.1", port=port, start_time=time.time())
        kazoo.create(f"{group}/{instance.address}", instance.to_json(), makepath=True)

    for port in stable:
        await asyncio.to_thread(create, port)
    consumers = [consumer_for(zookeeper.url, tenant, tmp_path / f"c{i}") for i in range(3)]
    async with contextlib.AsyncExitStack() as stack:
        for consumer in consumers:
            await stack.enter_async_context(consumer)
            await consumer.directory("XIESR").wait_listed()

        live, changes = set(stable), 0
        rng = random.Random(7)
        start = time.monotonic()
        for tick in range(50 * 30):
            delay = start + tick / 50 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            port = rng.choice(ports[5:])
            if port in live:
                await asyncio.to_thread(kazoo.delete, f"{group}/127.0.0.1:{port}")
                live.discard(port)
            else:
                await asyncio.to_thread(create, port)
                live.add(port)
            changes += 1
        churn_seconds = time.monotonic() - start
        stopped = time.monotonic()

        truth = set(await asyncio.to_thread(kazoo.get_children, group))
        assert truth == {f"127.0.0.1:{port}" for port in live}
        for consumer in consumers:
            directory = consumer.directory("XIESR")
            await wait_until(
                lambda d=directory: set(d.endpoints) == truth, 15, "a view equal to ZooKeeper's"
            )
        figures.append(
            f"churn: {changes} changes in {churn_seconds:.1f}s; 3 consumers equal to ZooKeeper "
            f"{time.monotonic() - stopped:.2f}s after it stopped"
        )
