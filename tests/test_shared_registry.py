"""A Registry object given to several consumers (and a server) is one ZooKeeper session
that its owner starts and closes: closing one consumer leaves the others working."""

import asyncio
import re
from pathlib import Path

import pytest

import csf
from csf.config import parse_registry_url
from csf.registry import ZooKeeperRegistry
from csf.testing.zookeeper import LocalZooKeeper, four_letter_word
from demo import greeter_pb2, greeter_pb2_grpc
from tests.conftest import greeter_server


def sessions(zookeeper: LocalZooKeeper) -> set[str]:
    """The sessions of the clients connected to `zookeeper` now."""
    return set(re.findall(r"sid=(0x[0-9a-f]+)", four_letter_word(zookeeper.port, "cons")))


async def test_consumers_sharing_a_registry_keep_one_session_and_leave_it_open(
    own_zookeeper: LocalZooKeeper, tmp_path: Path
) -> None:
    registry = ZooKeeperRegistry(parse_registry_url(own_zookeeper.url))  # type: ignore[arg-type]
    await registry.start()
    try:
        await registry.wait_connected()
        session = registry.session_id
        server = greeter_server(registry, "T")  # type: ignore[arg-type]
        first = csf.Consumer(registry=registry, tenant="T", app="a", snapshot_dir=tmp_path / "a")
        second = csf.Consumer(registry=registry, tenant="T", app="b", snapshot_dir=tmp_path / "b")
        async with server, second:
            stub = second.stub(greeter_pb2_grpc.GreeterStub, service="XIESR")
            async with first:
                other = first.stub(greeter_pb2_grpc.GreeterStub, service="XIESR")
                for caller in (stub, other):
                    reply = await caller.SayHello(greeter_pb2.HelloRequest(name="x"))
                    assert reply.served_by == server.address
                found = await asyncio.to_thread(sessions, own_zookeeper)
                assert found == {f"0x{session:x}"}, "one ZooKeeper session for them all"
            reply = await stub.SayHello(greeter_pb2.HelloRequest(name="y"))
            assert reply.served_by == server.address
            assert registry.session_id == session and registry.client.connected
        assert registry.client.connected, "the owner closes it, not the consumers"
    finally:
        await registry.close()


def test_a_registry_argument_that_is_neither_a_url_nor_a_registry_is_refused() -> None:
    with pytest.raises(csf.ConfigError, match=r"registry: expected a zk:// or static:// URL"):
        csf.Consumer(registry=Path("/tmp"), tenant="T", app="a")  # type: ignore[arg-type]
