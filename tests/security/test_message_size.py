"""The default maximum message size of a provider is 4 MiB: a request a little under it is
served, one a little over it is refused by the provider with RESOURCE_EXHAUSTED."""

from pathlib import Path

import grpc
import pytest

import csf
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from tests.conftest import consumer_for, greeter_server
from tests.security.servicers import SizingGreeter

FOUR_MIB = 4 * 1024 * 1024


def request_of(size: int) -> greeter_pb2.HelloRequest:
    """A request whose serialized form is exactly `size` bytes."""
    overhead = len(greeter_pb2.HelloRequest(name="x" * size).SerializeToString()) - size
    request = greeter_pb2.HelloRequest(name="x" * (size - overhead))
    assert len(request.SerializeToString()) == size
    return request


async def test_the_default_limit_serves_a_request_under_4_mib_and_refuses_one_over(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    SizingGreeter.handled = 0
    under, over = request_of(FOUR_MIB - 1024), request_of(FOUR_MIB + 1024)
    async with (
        greeter_server(zookeeper.url, tenant, SizingGreeter),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=10)
        reply = await stub.SayHello(under)
        assert reply.message == str(len(under.name))
        assert SizingGreeter.handled == 1
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.SayHello(over)
    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    # Not one of CSF's own refusals on the consumer side (rate or concurrency limits):
    # the provider's gRPC refused what it received, before any handler ran.
    assert not isinstance(refused.value, csf.CsfError)
    assert "Received message larger than max" in str(refused.value.details())
    assert SizingGreeter.handled == 1
