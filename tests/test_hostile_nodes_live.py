"""Hostile nodes written beside real providers: a consumer under steady load keeps 0
failed calls, keeps following real provider changes within 2 s, and tells each hostile
item once (one WARNING, one count of `csf.registry.rejected`), not once per read."""

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.security import make_digest_acl

from csf.registry import ZooKeeperRegistry
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from demo.providers import Greeter
from tests.conftest import ProviderProcess, consumer_for, expire_session, push_rule, wait_until
from tests.observability.memory import Telemetry, server

HUGE = "1" + "0" * 400
DEEP = "[" * 30_000 + "]" * 30_000


def instance_text(port: int, field: str, value: str) -> bytes:
    """Instance JSON for 127.0.0.1:`port` with `field` set to raw JSON text `value`."""
    good = {"schema": 1, "host": "127.0.0.1", "port": port}
    body = json.dumps(good)[:-1]
    return f'{body}, "{field}": {value}}}'.encode()


HOSTILE_INSTANCES = {  # port -> data
    61001: instance_text(61001, "warmup", "NaN"),
    61002: instance_text(61002, "start_time", "Infinity"),
    61003: instance_text(61003, "weight", HUGE),
    61004: instance_text(61004, "tags", DEEP),
    61005: b'{"schema": 1, "host": ',
    61006: b"[1, 2, 3]",
    61007: json.dumps({"schema": 1, "host": "unix-abstract:x", "port": 61007}).encode(),
}
UNREADABLE_PORT = 61008  # a node the consumer may not read (NoAuth)
HOSTILE_RULES: dict[str, bytes] = {
    "timeout": b'{"schema": 1, "timeout_ms": 1e13}',
    "ratelimit": b'{"schema": 1, "rate": Infinity, "burst": 5}',
    "route": f'{{"schema": 1, "group_weights": {{"normal": {HUGE}}}}}'.encode(),
    "breaker": f'{{"schema": 1, "x": {DEEP}}}'.encode(),
}


def group_path(tenant: str) -> str:
    return f"/busidomain/csf/{tenant}/XIESR/clusters/defaultCluster/normal"


def write_hostile_nodes(kazoo: KazooClient, tenant: str) -> list[str]:
    """Every hostile instance node and rule document; returns the instance paths."""
    group = group_path(tenant)
    paths = []
    for port, data in HOSTILE_INSTANCES.items():
        paths.append(f"{group}/127.0.0.1:{port}")
        kazoo.create(paths[-1], data, makepath=True)
    paths.append(f"{group}/127.0.0.1:{UNREADABLE_PORT}")
    stranger = make_digest_acl("mallory", "not-the-tenant", all=True)
    kazoo.create(paths[-1], instance_text(UNREADABLE_PORT, "weight", "1"), acl=[stranger])
    for kind, document in HOSTILE_RULES.items():
        push_rule(kazoo, tenant, kind, document)
    return paths


@contextlib.asynccontextmanager
async def steady_load(stub: greeter_pb2_grpc.GreeterStub) -> AsyncIterator[list[BaseException]]:
    """Calls one after another until the block ends; yields the list of failures."""
    failures: list[BaseException] = []
    done = asyncio.Event()

    async def call() -> None:
        while not done.is_set():
            try:
                await stub.SayHello(greeter_pb2.HelloRequest(name="load"), timeout=5)
            except Exception as exc:
                failures.append(exc)
            await asyncio.sleep(0.005)

    task = asyncio.create_task(call())
    try:
        yield failures
    finally:
        done.set()
        await task


async def test_hostile_nodes_are_skipped_told_once_and_real_changes_still_followed(
    zookeeper: LocalZooKeeper,
    kazoo: KazooClient,
    tenant: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    telemetry: Telemetry,
    providers: Callable[..., Awaitable[ProviderProcess]],
) -> None:
    caplog.set_level(logging.WARNING)
    # Providers in their own processes: only the consumers' records reach caplog.
    first = await providers(zookeeper.url, tenant)
    async with (
        consumer_for(zookeeper.url, tenant, tmp_path, observability=telemetry.config) as consumer,
    ):
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR")
        endpoints = consumer.directory("XIESR").endpoints
        await wait_until(lambda: first.address in endpoints, 10, "the first provider")
        async with steady_load(stub) as failures:
            hostile = await asyncio.to_thread(write_hostile_nodes, kazoo, tenant)
            rules = consumer.rules("XIESR")
            await wait_until(lambda: rules.rejected == len(HOSTILE_RULES), 10, "rule refusals")
            # A new session re-reads everything: still told once.
            registry = consumer._registry
            assert isinstance(registry, ZooKeeperRegistry)
            await asyncio.to_thread(expire_session, zookeeper.hosts, registry.client)
            later = await providers(zookeeper.url, tenant)
            await wait_until(lambda: served_by(stub, later.address), 2, "the new one used")
            later.signal(signal.SIGTERM)
            await wait_until(lambda: later.address not in endpoints, 2, "the stopped one gone")
            # A consumer started while the hostile nodes are there gets its first list.
            async with consumer_for(zookeeper.url, tenant, tmp_path / "b") as newcomer:
                fresh = newcomer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR")
                reply = await fresh.SayHello(greeter_pb2.HelloRequest(name="x"), timeout=5)
                assert reply.served_by == first.address
        assert failures == []
        assert set(endpoints) == {first.address}

    main_records = [r for r in caplog.records if r.name == "csf.registry"]
    for path in hostile:
        told = [r for r in main_records if path in r.getMessage()]
        # once by the consumer, once by the newcomer (its own registry)
        assert len(told) == 2, (path, [r.getMessage() for r in told])
    for kind in HOSTILE_RULES:
        told = [r for r in caplog.records if f"rejected {kind} rule" in r.getMessage()]
        assert len(told) == 2, (kind, [r.getMessage() for r in told])
    counted = {
        (p.attributes["csf.kind"], p.attributes["csf.reason"]): p.value
        for p in telemetry.points("csf.registry.rejected")
    }
    assert sum(counted.values()) == len(hostile) + len(HOSTILE_RULES), counted
    assert counted[("instance", "unreadable")] == 1


async def served_by(stub: greeter_pb2_grpc.GreeterStub, address: str) -> bool:
    replies = [await stub.SayHello(greeter_pb2.HelloRequest(name="x")) for _ in range(10)]
    return any(reply.served_by == address for reply in replies)


async def test_a_provider_tells_and_counts_a_hostile_rule_once(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, telemetry: Telemetry
) -> None:
    servicer = Greeter(lambda: "here")
    provider = server(zookeeper, tenant, servicer, telemetry)
    async with provider:
        push_rule(kazoo, tenant, "concurrency", b'{"schema": 1, "provider": Infinity}')

        def counted() -> float:
            return sum(p.value for p in telemetry.points("csf.registry.rejected"))

        await wait_until(lambda: counted() == 1, 10, "the provider counting the rule")
        push_rule(kazoo, tenant, "concurrency", b'{"schema": 1, "provider": 1e400}')
        await wait_until(lambda: counted() == 2, 10, "the provider counting the new version")
        [point] = telemetry.points("csf.registry.rejected")
        assert dict(point.attributes) == {"csf.kind": "rule", "csf.reason": "format"}
