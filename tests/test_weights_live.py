"""Weights on real providers through a real ZooKeeper: a weight of 0 pushed as a rule
drains a provider under every balancer, warm-up ramps a new provider's share, and
consistent hashing maps keys alike in separate consumer processes.

Run as a module, it is one such consumer process: it prints the provider of each key.
"""

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from kazoo.client import KazooClient

import csf
from csf.lb import BALANCERS
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from tests.conftest import ROOT, consumer_for, greeter_variant, pushed, serving, wait_until

Request = greeter_pb2.HelloRequest
PROVIDER = greeter_variant()


def _stub(consumer: csf.Consumer, lb: str) -> Any:
    return consumer.stub(
        greeter_pb2_grpc.GreeterStub, service="XIESR", lb=lb, hash_key=lambda r: r.name
    )


async def _served_by(stub: Any, names: list[str]) -> Counter[str]:
    return Counter([(await stub.SayHello(Request(name=name))).served_by for name in names])


async def test_a_weight_of_zero_pushed_as_a_rule_drains_a_provider_under_every_balancer(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path
) -> None:
    async with (
        serving(zookeeper.url, tenant, PROVIDER, PROVIDER, PROVIDER) as servers,
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        directory = consumer.directory("XIESR")
        await wait_until(lambda: len(directory.endpoints) == 3, 10, "three providers")
        drained = servers[0].address
        rule = {"schema": 1, "instances": {drained: 0}}
        await pushed(kazoo, tenant, consumer.rules("XIESR"), "weight", rule)
        for lb in sorted(BALANCERS):
            counts = await _served_by(_stub(consumer, lb), [f"user-{i}" for i in range(30)])
            assert drained not in counts, (lb, counts)
            assert sum(counts.values()) == 30, lb


async def _share_of(stub: Any, address: str, calls: int = 40) -> float:
    counts = await _served_by(stub, [str(i) for i in range(calls)])
    return counts[address] / calls


async def test_a_provider_s_share_grows_over_its_warm_up_under_the_default_balancer(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path, figures: list[str]
) -> None:
    warmup = 8.0
    async with (
        serving(zookeeper.url, tenant, greeter_variant(warmup=warmup), PROVIDER) as (new, _),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR")
        directory = consumer.directory("XIESR")
        await wait_until(lambda: len(directory.endpoints) == 2, 10, "both providers")
        warm_at = directory.endpoints[new.address].instance.start_time + warmup
        early = late = await _share_of(stub, new.address)
        # Well before the warm-up ends its weight passes 43 of 100: a share of 30%.
        while late < 0.3 and time.time() < warm_at - 1:
            await asyncio.sleep(0.2)  # the directory reweighs on its own timer meanwhile
            late = await _share_of(stub, new.address)
        figures.append(
            f"warm-up {warmup:.0f} s: the new provider's share {early:.0%} -> {late:.0%}"
        )
        assert early <= 0.2, f"early in its warm-up it got {early:.0%}, not about 1 in 50"
        assert late >= 0.3, f"its share did not grow during its warm-up: {late:.0%}"


async def _mapping_of(registry: str, tenant: str, providers: int, keys: int) -> dict[str, str]:
    """This process's consumer: the provider consistent_hash sends each key to."""
    async with csf.Consumer(registry=registry, tenant=tenant, app="hasher") as consumer:
        directory = consumer.directory("XIESR")
        # The ring must hold every provider before it maps a key.
        await wait_until(lambda: len(directory.endpoints) == providers, 30, "every provider")
        stub = _stub(consumer, "consistent_hash")
        names = [f"user-{index}" for index in range(keys)]
        return {name: (await stub.SayHello(Request(name=name))).served_by for name in names}


async def _mapping_in_a_process(zookeeper: LocalZooKeeper, tenant: str) -> dict[str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.test_weights_live", zookeeper.url, tenant,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONHASHSEED": "random"},  # as unalike as real processes
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, out
    mapping: dict[str, str] = json.loads(out)
    return mapping


async def test_consistent_hashing_maps_each_key_alike_in_two_consumer_processes(
    zookeeper: LocalZooKeeper, tenant: str
) -> None:
    async with serving(zookeeper.url, tenant, PROVIDER, PROVIDER, PROVIDER) as servers:
        first, second = await asyncio.gather(
            _mapping_in_a_process(zookeeper, tenant), _mapping_in_a_process(zookeeper, tenant)
        )
        assert len(first) == 60 and first == second
        assert set(first.values()) == {server.address for server in servers}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("registry")
    parser.add_argument("tenant")
    args = parser.parse_args()
    mapping = asyncio.run(_mapping_of(args.registry, args.tenant, providers=3, keys=60))
    print(json.dumps(mapping), flush=True)
