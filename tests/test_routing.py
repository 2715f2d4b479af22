"""Route and weight rules pushed to ZooKeeper steer a running consumer's calls."""

import asyncio
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient

import csf
from csf.rules import RouteRule
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from tests.conftest import greeter_variant, push_rule, serving, wait_until

NORMAL = greeter_variant(group="normal", tags={"zone": "hz"})
GRAY = greeter_variant(group="gray", tags={"zone": "gz"})
CALLS = 1_000


async def served(stub: Any, calls: int = CALLS) -> Counter[str]:
    replies = await asyncio.gather(
        *(stub.SayHello(greeter_pb2.HelloRequest(name=str(i))) for i in range(calls))
    )
    return Counter(reply.served_by for reply in replies)


async def test_a_route_rule_splits_calls_among_groups_and_bad_rules_are_refused(
    zookeeper: LocalZooKeeper,
    kazoo: KazooClient,
    tenant: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="csf.rules")
    async with (
        serving(zookeeper.url, tenant, NORMAL, GRAY) as (normal, gray),
        csf.Consumer(
            registry=zookeeper.url, tenant=tenant, app="t", snapshot_dir=tmp_path
        ) as consumer,
    ):
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", lb="random")
        rules = consumer.rules("XIESR")
        before = await served(stub)
        assert set(before) == {normal.address, gray.address}

        rule = {"schema": 1, "group_weights": {"normal": 90, "gray": 10}}
        await asyncio.to_thread(push_rule, kazoo, tenant, "route", rule)
        await wait_until(lambda: rules.get(RouteRule) is not None, 10, "the route rule")
        split = await served(stub)
        assert 50 <= split[gray.address] <= 150, split  # 10% of 1,000, within 5 points

        for bad in (
            b"{not json",
            {"schema": 1, "group_weights": {"gray": -1}},
            {"schema": 1, "x": 1},
        ):
            rejected = rules.rejected
            await asyncio.to_thread(push_rule, kazoo, tenant, "route", bad)
            await wait_until(lambda n=rejected: rules.rejected == n + 1, 10, "the rejection")
        assert "rejected route rule" in caplog.text and "keeping the last good one" in caplog.text
        still = await served(stub)
        assert 50 <= still[gray.address] <= 150, "the last good rule stays in force"

        await asyncio.to_thread(
            push_rule, kazoo, tenant, "route", {"schema": 1, "tags": {"zone": "gz"}}
        )
        await wait_until(lambda: bool(getattr(rules.get(RouteRule), "tags", None)), 10)
        assert set(await served(stub, 100)) == {gray.address}

        await asyncio.to_thread(kazoo.delete, f"/busidomain/csf/{tenant}/XIESR/configs/route")
        await wait_until(lambda: rules.get(RouteRule) is None, 10, "the rule removed")
        assert set(await served(stub, 200)) == {normal.address, gray.address}


async def test_stub_selection_by_group_version_and_tags(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    v2 = greeter_variant(group="normal", version="2.0.0", tags={"zone": "gz"})
    async with (
        serving(zookeeper.url, tenant, NORMAL, GRAY, v2) as (normal, gray, newer),
        csf.Consumer(
            registry=zookeeper.url, tenant=tenant, app="t", snapshot_dir=tmp_path
        ) as consumer,
    ):

        def stub(**selection: Any) -> Any:
            return consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", **selection)

        assert set(await served(stub(group="gray"), 50)) == {gray.address}
        assert set(await served(stub(version="2.0.0"), 50)) == {newer.address}
        assert set(await served(stub(tags={"zone": "gz"}), 100)) == {gray.address, newer.address}
        assert set(await served(stub(group="normal", version="1.0.0"), 50)) == {normal.address}
        with pytest.raises(csf.NoProviderError):
            await stub(group="normal", tags={"zone": "mars"}).SayHello(greeter_pb2.HelloRequest())


async def test_a_weight_rule_changes_shares_without_restart(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path
) -> None:
    async with (
        serving(zookeeper.url, tenant, NORMAL, NORMAL) as (first, second),
        csf.Consumer(
            registry=zookeeper.url, tenant=tenant, app="t", snapshot_dir=tmp_path
        ) as consumer,
    ):
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", lb="weighted_random")
        rules = consumer.rules("XIESR")
        assert set(await served(stub, 200)) == {first.address, second.address}

        rule = {"schema": 1, "instances": {first.address: 300, second.address: 0}}
        await asyncio.to_thread(push_rule, kazoo, tenant, "weight", rule)
        await wait_until(lambda: rules.weight is not None, 10, "the weight rule")
        assert set(await served(stub, 300)) == {first.address}

        rejected = rules.rejected
        await asyncio.to_thread(
            push_rule, kazoo, tenant, "weight", {"schema": 1, "instances": {first.address: -1}}
        )
        await wait_until(lambda: rules.rejected == rejected + 1, 10, "the rejection")
        assert set(await served(stub, 300)) == {first.address}, "the last good rule stays"


async def test_a_route_to_a_group_with_no_provider_gives_its_share_back(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path
) -> None:
    async with (
        serving(zookeeper.url, tenant, NORMAL) as (normal,),
        csf.Consumer(
            registry=zookeeper.url, tenant=tenant, app="t", snapshot_dir=tmp_path
        ) as consumer,
    ):
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR")
        rules = consumer.rules("XIESR")
        rule = {"schema": 1, "group_weights": {"gray": 100}}
        await asyncio.to_thread(push_rule, kazoo, tenant, "route", rule)
        await wait_until(lambda: rules.get(RouteRule) is not None, 10, "the route rule")
        assert set(await served(stub, 20)) == {normal.address}, "gray has nobody: normal serves"
