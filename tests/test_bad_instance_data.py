"""A provider whose instance data goes bad keeps its last good data in every consumer,
even while its neighbours' data is fine (so no empty-push protection is involved)."""

import asyncio
import logging
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from demo.providers import Greeter
from tests.conftest import consumer_for, greeter_server, serving, wait_until


async def test_a_provider_whose_data_goes_bad_keeps_its_last_good_data(
    zookeeper: LocalZooKeeper,
    kazoo: KazooClient,
    tenant: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="csf.registry")
    group = f"/busidomain/csf/{tenant}/XIESR/clusters/defaultCluster/normal"
    async with (
        serving(zookeeper.url, tenant, Greeter, Greeter) as (spoilt, fine),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR")
        endpoints = consumer.directory("XIESR").endpoints
        await wait_until(lambda: len(endpoints) == 2, 10, "both providers")
        path = f"{group}/{spoilt.address}"
        await asyncio.to_thread(kazoo.set, path, b'{"schema": 1, "host": 7}')
        await wait_until(lambda: f"skipping malformed instance at {path}" in caplog.text, 10)
        # Once a later change has reached the consumer, the bad data surely has too.
        async with greeter_server(zookeeper.url, tenant) as later:
            await wait_until(lambda: later.address in endpoints, 10, "a later provider")
            assert set(endpoints) == {spoilt.address, fine.address, later.address}
            served = {
                (await stub.SayHello(greeter_pb2.HelloRequest(name=str(i)))).served_by
                for i in range(15)
            }
            assert served == {spoilt.address, fine.address, later.address}
