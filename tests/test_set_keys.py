"""Where a SET-ized call's key comes from, first found wins (DESIGN 8), and where it shows.

Two providers, in hz.a.1 and hz.a.2; a rule of two buckets sends decimal key "0" to
hz.a.1 and "1" to hz.a.2, so each case's answer says which source of the key won.
"""

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from kazoo.client import KazooClient
from opentelemetry.trace import SpanKind

import csf
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from demo.providers import Greeter
from tests.conftest import push_rule, wait_until
from tests.observability.memory import Telemetry

RULE = {
    "schema": 1,
    "key": "x-user-id",
    "buckets": 2,
    "ranges": [{"from": 0, "to": 0, "set": "hz.a.1"}, {"from": 1, "to": 1, "set": "hz.a.2"}],
}
Request = greeter_pb2.HelloRequest
GreeterInSets = csf.provider(service="XIESR", warmup=0)(type("GreeterInSets", (Greeter,), {}))


def name_is(value: str) -> Callable[[Any], str]:
    return lambda request: value


def raises(request: Any) -> str:
    raise KeyError("no user")


@contextlib.asynccontextmanager
async def two_sets(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path, **observed: Any
) -> AsyncIterator[tuple[csf.Consumer, dict[str, str]]]:
    """A consumer, and the SET of each provider address, the rule in force."""
    push_rule(kazoo, tenant, "set", RULE)
    servers = {}
    for set_name in ("hz.a.1", "hz.a.2"):
        server = csf.Server(
            zookeeper.url, tenant, deregister_wait=0, handle_signals=False, set=set_name, **observed
        )
        server.add(GreeterInSets(lambda s=server: s.address))
        servers[set_name] = server
    async with contextlib.AsyncExitStack() as stack:
        for server in servers.values():
            await stack.enter_async_context(server)
        consumer = await stack.enter_async_context(
            csf.Consumer(zookeeper.url, tenant, "keys", snapshot_dir=tmp_path, **observed)
        )
        directory = consumer.directory("XIESR")
        await wait_until(lambda: len(directory.endpoints) == 2, 10, "both providers")
        yield consumer, {server.address: name for name, server in servers.items()}


CASES = [  # (stub options, call metadata, the SET that must answer)
    ({}, (("csf-set-key", "1"), ("x-user-id", "0")), "hz.a.2"),
    ({}, (("x-user-id", "1"),), "hz.a.2"),
    ({"set_key": name_is("0")}, (("x-user-id", "1"),), "hz.a.2"),
    ({"set_key": name_is("1"), "hash_key": name_is("0")}, None, "hz.a.2"),
    ({"set_key": name_is(""), "hash_key": name_is("1")}, None, "hz.a.2"),
    ({"hash_key": name_is("1")}, None, "hz.a.2"),
    ({"hash_key": name_is("0")}, (("x-user-id", ""),), "hz.a.1"),
    ({"set_key": lambda request: 0, "hash_key": name_is("1")}, None, "hz.a.1"),  # 0 is a key
    ({"set_key": lambda request: 1}, None, "hz.a.2"),  # a user id as an int
]


async def test_the_first_key_found_picks_the_set(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path
) -> None:
    async with two_sets(zookeeper, kazoo, tenant, tmp_path) as (consumer, set_of):
        for options, metadata, want in CASES:
            stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", **options)
            replies = [await stub.SayHello(Request(name="x"), metadata=metadata) for _ in range(6)]
            assert {set_of[reply.served_by] for reply in replies} == {want}, (options, metadata)

        failing = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", set_key=raises)
        with pytest.raises(csf.NoSetKeyError) as caught:
            await failing.SayHello(Request(name="x"))
        assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert "set_key failed for SayHello: KeyError" in (caught.value.details() or "")

        keyless = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR")
        with pytest.raises(csf.NoSetKeyError) as caught:
            await keyless.SayHello(Request(name="x"))
        assert "'csf-set-key' or 'x-user-id'" in (caught.value.details() or "")


async def test_spans_and_call_metrics_carry_the_set(
    zookeeper: LocalZooKeeper,
    kazoo: KazooClient,
    tenant: str,
    tmp_path: Path,
    telemetry: Telemetry,
) -> None:
    observed = {"observability": telemetry.config}
    async with two_sets(zookeeper, kazoo, tenant, tmp_path, **observed) as (consumer, _):
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR")
        await stub.SayHello(Request(name="x"), metadata=(("x-user-id", "1"),))
    spans = telemetry.finished()
    client = [s for s in spans if s.kind is SpanKind.CLIENT]
    server = [s for s in spans if s.kind is SpanKind.SERVER]
    assert client and all(s.attributes["csf.set"] == "hz.a.2" for s in client)
    assert server and all(s.attributes["csf.set"] == "hz.a.2" for s in server)
    calls = telemetry.points("csf.client.calls")
    assert [p.attributes.get("csf.set") for p in calls] == ["hz.a.2"], calls
