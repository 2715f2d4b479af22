"""Bad or empty registry data never takes working providers away from a consumer."""

import asyncio
import json
import logging
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from tests.conftest import consumer_for, greeter_server, wait_until
from tests.load import LoadResult, paced


async def test_malformed_instances_are_skipped_and_the_rest_stays(
    zookeeper: LocalZooKeeper,
    kazoo: KazooClient,
    tenant: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="csf.registry")
    group = f"/busidomain/csf/{tenant}/XIESR/clusters/defaultCluster/normal"
    planted = {
        f"{group}/127.0.0.1:1": b"not json at all",
        f"{group}/127.0.0.1:2": json.dumps({"schema": 99, "host": "127.0.0.1", "port": 2}).encode(),
        f"{group}/127.0.0.1:3": b'{"schema": 1, "pad": "' + b"x" * 200_000 + b'"}',
        f"{group}/127.0.0.1:4": b"",
    }
    async with greeter_server(zookeeper.url, tenant) as server:
        for path, data in planted.items():
            await asyncio.to_thread(kazoo.create, path, data, makepath=True)
        async with consumer_for(zookeeper.url, tenant, tmp_path) as client:
            stub = client.stub(greeter_pb2_grpc.GreeterStub, service="XIESR")
            reply = await stub.SayHello(greeter_pb2.HelloRequest(name="x"))
            assert reply.served_by == server.address
            directory = client.directory("XIESR")
            assert set(directory.endpoints) == {server.address}
            for path in planted:
                assert f"skipping malformed instance at {path}" in caplog.text

            # A provider whose data goes bad keeps its last good instance.
            own = f"{group}/{server.address}"
            await asyncio.to_thread(kazoo.set, own, b"{broken")
            await wait_until(lambda: f"at {own}" in caplog.text, 10, "the warning")
            assert "keeping its last good data" in caplog.text
            assert set(directory.endpoints) == {server.address}
            reply = await stub.SayHello(greeter_pb2.HelloRequest(name="y"))
            assert reply.served_by == server.address


async def test_an_empty_push_keeps_providers_that_still_answer(
    zookeeper: LocalZooKeeper,
    kazoo: KazooClient,
    tenant: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="csf.directory")
    servers = [greeter_server(zookeeper.url, tenant) for _ in range(2)]
    async with servers[0], servers[1], consumer_for(zookeeper.url, tenant, tmp_path) as client:
        stub = client.stub(greeter_pb2_grpc.GreeterStub, service="XIESR")
        directory = client.directory("XIESR")
        addresses = {server.address for server in servers}
        await wait_until(lambda: set(directory.endpoints) == addresses, 10, "both providers")

        group = f"/busidomain/csf/{tenant}/XIESR/clusters/defaultCluster/normal"
        result = LoadResult()
        load = asyncio.ensure_future(
            paced(lambda: stub.SayHello(greeter_pb2.HelloRequest(name="x")), 100, 3, result)
        )
        await wait_until(lambda: result.offered >= 100, 5, "the load under way")
        # All at once, so the consumer sees one empty list, not a shrinking one.
        wipe = kazoo.transaction()
        for address in addresses:
            wipe.delete(f"{group}/{address}")
        assert not any(isinstance(r, Exception) for r in await asyncio.to_thread(wipe.commit))
        await wait_until(lambda: directory.empty_pushes_ignored >= 1, 10, "the empty push")
        assert "lists no providers while 2 are known" in caplog.text
        await load
        assert result.failed == 0 and result.ok == result.offered == 300
        assert set(directory.endpoints) == addresses

        # A kept provider that really goes away is dropped once it stops answering.
        await servers[0].stop()
        await wait_until(
            lambda: set(directory.endpoints) == {servers[1].address}, 15, "the stopped one dropped"
        )
        reply = await stub.SayHello(greeter_pb2.HelloRequest(name="z"))
        assert reply.served_by == servers[1].address
