"""SET routing live (DESIGN section 8, issue 15's "Must show"): 3 SETs of 2 in-process
providers each on a real ZooKeeper. Each reply's `served_by` says which provider, hence
which SET, answered a call; `SetRule.which` of the same rule says where it should have.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from kazoo.client import KazooClient

import csf
from csf.set_rule import SetRule
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from demo.providers import Greeter
from demo.sets import KEY, RULE, SETS, SHARES
from tests.conftest import ROOT, ProviderProcess, push_rule, wait_until
from tests.set_deployment import (
    Deployment,
    Outcome,
    call_all,
    deployed,
    say_hello,
)

SERVICE = "XIESR"


def rule_of(document: dict[str, Any]) -> SetRule:
    return SetRule.parse(json.dumps(document).encode())


async def ready_consumer(
    zookeeper: LocalZooKeeper,
    kazoo: KazooClient,
    tenant: str,
    tmp_path: Path,
    deployment: Deployment,
    rule: dict[str, Any] = RULE,
    *,
    set_name: str | None = None,
    service: str = SERVICE,
) -> csf.Consumer:
    """A started consumer that holds `rule` for `service` and lists every provider."""
    consumer = csf.Consumer(
        zookeeper.url, tenant, "set-live", snapshot_dir=tmp_path / uuid.uuid4().hex, set=set_name
    )
    await consumer.start()
    await asyncio.to_thread(push_rule, kazoo, tenant, "set", rule, service)
    rules = consumer.rules(service)
    expected = rule_of(rule)
    await wait_until(lambda: rules.get(SetRule) == expected, 10, "the set rule")
    directory = consumer.directory(service)
    count = len(deployment.servers)
    await wait_until(lambda: len(directory.endpoints) == count, 10, "every provider listed")
    return consumer


def misrouted(
    rule: SetRule, deployment: Deployment, keys: list[str], outcomes: list[Outcome]
) -> list[tuple[str, str, Outcome]]:
    """(key, its SET, what happened) for every call that did not land in its key's SET."""
    wrong = []
    for key, outcome in zip(keys, outcomes, strict=True):
        owner = str(rule.which(key)[1])
        if not isinstance(outcome, str) or deployment.set_of.get(outcome) != owner:
            wrong.append((key, owner, outcome))
    return wrong


@pytest.mark.slow  # 20,000 calls through a SET deployment: CI runs it
@pytest.mark.timeout(180)
@pytest.mark.parametrize("keys_are", ["decimal-in-metadata", "text-from-set_key"])
async def test_10000_keys_land_in_their_sets_at_the_tables_shares(
    zookeeper: LocalZooKeeper,
    kazoo: KazooClient,
    tenant: str,
    tmp_path: Path,
    figures: list[str],
    keys_are: str,
) -> None:
    rule = rule_of(RULE)
    if keys_are == "decimal-in-metadata":
        # Keys 0..9999 fill each of the 1000 buckets exactly 10 times: exact shares.
        keys = [str(k) for k in range(10_000)]
    else:
        generator = random.Random(15)
        keys = [f"user-{generator.getrandbits(64):x}" for _ in range(10_000)]
    async with deployed(zookeeper.url, tenant) as deployment:
        consumer = await ready_consumer(zookeeper, kazoo, tenant, tmp_path, deployment)
        try:
            in_metadata = keys_are.endswith("metadata")
            stub = consumer.stub(
                greeter_pb2_grpc.GreeterStub,
                service=SERVICE,
                timeout=10.0,
                set_key=None if in_metadata else (lambda request: request.name),
            )
            outcomes = await call_all(stub, keys, metadata=in_metadata)
        finally:
            await consumer.close()
    assert misrouted(rule, deployment, keys, outcomes) == []
    per_set = Counter(deployment.set_of[str(o)] for o in outcomes)
    per_provider = Counter(str(o) for o in outcomes)
    assert all(per_provider[a] > 0 for a in deployment.set_of), per_provider
    n = len(keys)
    for set_name, share in SHARES.items():
        # Decimal keys: exact. Text keys (CRC-32 buckets): within 5 binomial deviations.
        tolerance = 0 if keys_are.startswith("decimal") else 5 * math.sqrt(n * share * (1 - share))
        assert abs(per_set[set_name] - n * share) <= tolerance, (set_name, per_set)
    figures.append(
        f"SET shares of {n} {keys_are} keys: "
        + ", ".join(f"{s} {per_set[s] / n:.2%} (table {SHARES[s]:.0%})" for s in SETS)
        + f"; per provider {sorted(per_provider.values())}"
    )


HOPS = ("SETA", "SETB", "SETC")
# The same table on every hop; B's rule reads another metadata entry and C's none at
# all: past the edge the key travels in csf-set-key alone.
HOP_KEYS = {"SETA": KEY, "SETB": "x-b-user", "SETC": None}


def hop_servicers(stubs: dict[str, Any]) -> list[type[Greeter]]:
    """Providers of SETA, SETB and SETC. A request's name lists the services still to
    call; each hop calls the next through `stubs` (no metadata given) and answers with
    the chain of served_by, "A>B>C"."""

    async def say_hello(self: Greeter, request: Any, context: Any) -> Any:
        mine = self._address()
        if not request.name:
            return greeter_pb2.HelloReply(message="end", served_by=mine)
        following, _, rest = request.name.partition(",")
        reply = await stubs[following].SayHello(greeter_pb2.HelloRequest(name=rest))
        return greeter_pb2.HelloReply(message="hop", served_by=f"{mine}>{reply.served_by}")

    return [
        csf.provider(service=code, version="1.0.0", warmup=0)(
            type(f"Hop{code}", (Greeter,), {"SayHello": say_hello})
        )
        for code in HOPS
    ]


async def test_a_three_hop_chain_stays_in_the_keys_set(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path
) -> None:
    rule = rule_of(RULE)
    for code in HOPS:
        document = {name: value for name, value in RULE.items() if name != "key"}
        if HOP_KEYS[code] is not None:
            document["key"] = HOP_KEYS[code]
        await asyncio.to_thread(push_rule, kazoo, tenant, "set", document, code)
    stubs: dict[str, Any] = {}
    # The hops' consumer lives in hz.b.1: the inherited key, not its own SET, must rule.
    async with (
        csf.Consumer(
            zookeeper.url, tenant, "hops", snapshot_dir=tmp_path / "hops", set="hz.b.1"
        ) as hops,
        deployed(zookeeper.url, tenant, servicers=hop_servicers(stubs)) as deployment,
        csf.Consumer(zookeeper.url, tenant, "edge", snapshot_dir=tmp_path / "edge") as edge,
    ):
        for code in HOPS[1:]:
            stubs[code] = hops.stub(greeter_pb2_grpc.GreeterStub, service=code, timeout=10.0)
        count = len(deployment.servers)
        for consumer, code in ((edge, "SETA"), (hops, "SETB"), (hops, "SETC")):
            directory = consumer.directory(code)
            await wait_until(lambda d=directory: len(d.endpoints) == count, 10, code)
            await consumer.rules(code).settle(10)
            assert consumer.rules(code).get(SetRule) is not None
        edge_stub = edge.stub(greeter_pb2_grpc.GreeterStub, service="SETA", timeout=10.0)
        keys = [str(k) for k in random.Random(3).sample(range(10**12), 300)]
        chains: list[Outcome] = []
        for start in range(0, len(keys), 50):
            chunk = keys[start : start + 50]
            chains.extend(
                await asyncio.gather(
                    *(say_hello_chain(edge_stub, key, ",".join(HOPS[1:])) for key in chunk)
                )
            )
    wrong = []
    hop_sets: Counter[str] = Counter()
    for key, chain in zip(keys, chains, strict=True):
        owner = str(rule.which(key)[1])
        served = chain.split(">") if isinstance(chain, str) else []
        if len(served) != len(HOPS) or {deployment.set_of.get(a) for a in served} != {owner}:
            wrong.append((key, owner, chain))
        hop_sets[owner] += 1
    assert wrong == []
    assert set(hop_sets) == set(SETS)


async def say_hello_chain(stub: Any, key: str, route: str) -> Outcome:
    """A call at the edge: the key in metadata x-user-id, the route in the name."""
    try:
        reply = await stub.SayHello(greeter_pb2.HelloRequest(name=route), metadata=((KEY, key),))
    except grpc.aio.AioRpcError as exc:
        return exc
    return str(reply.served_by)


VICTIM = "hz.a.2"
AREA = "hz.a.*"
CENTER = "hz.center.1"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("on_empty", ["fail", "area", f"center:{CENTER}"])
async def test_a_sets_outage_touches_only_its_keys(
    zookeeper: LocalZooKeeper,
    kazoo: KazooClient,
    tenant: str,
    tmp_path: Path,
    figures: list[str],
    on_empty: str,
) -> None:
    """Every provider of hz.a.2 stops while calls run: its keys fail naming the SET and
    the bucket ("fail") or go to the fallback; the other SETs' calls all succeed, in
    their SETs, throughout."""
    document = {**RULE, "on_empty": on_empty}
    rule = rule_of(document)
    keys = [str(k) for k in range(1000)]  # one key per bucket
    victims = {k for k in keys if str(rule.which(k)[1]) == VICTIM}
    async with (
        deployed(zookeeper.url, tenant, (*SETS, AREA, CENTER), per_set=1) as spare,
        deployed(zookeeper.url, tenant) as deployment,
    ):
        deployment.set_of.update(spare.set_of)
        deployment.servers.extend(spare.servers)
        consumer = await ready_consumer(zookeeper, kazoo, tenant, tmp_path, deployment, document)
        try:
            stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service=SERVICE, timeout=5.0)
            assert misrouted(rule, deployment, keys, await call_all(stub, keys)) == []
            stopping = asyncio.create_task(deployment.stop(VICTIM))
            others_wrong: list[tuple[str, str, Outcome]] = []
            victim_outcomes: Counter[str] = Counter()
            started = time.monotonic()
            while True:
                stopped = stopping.done()  # then this whole round runs after the outage
                outcomes = await call_all(stub, keys)
                others_wrong += [
                    w for w in misrouted(rule, deployment, keys, outcomes) if w[0] not in victims
                ]
                settled = [
                    as_expected(rule, deployment, k, o)
                    for k, o in zip(keys, outcomes, strict=True)
                    if k in victims
                ]
                for k, o in zip(keys, outcomes, strict=True):
                    if k in victims:
                        victim_outcomes[describe(deployment, o)] += 1
                if stopped and all(settled):
                    break
                assert time.monotonic() - started < 30, f"{VICTIM}'s keys never settled"
            await stopping
        finally:
            await consumer.close()
    assert others_wrong == []
    figures.append(
        f"SET outage of {VICTIM} under on_empty {on_empty!r}: the calls of its "
        f"{len(victims)} keys {dict(victim_outcomes)}; other SETs' calls failed or "
        f"misrouted: {len(others_wrong)}"
    )


def as_expected(rule: SetRule, deployment: Deployment, key: str, outcome: Outcome) -> bool:
    """A call of the outage's SET: failed naming its SET and bucket, or at the fallback."""
    bucket, owner = rule.which(key)
    fallback = rule.fallback(owner)
    if fallback is None:
        return (
            isinstance(outcome, grpc.aio.AioRpcError)
            and outcome.code() is grpc.StatusCode.UNAVAILABLE
            and f"SET {owner} (bucket {bucket})" in (outcome.details() or "")
        )
    return isinstance(outcome, str) and deployment.set_of.get(outcome) == str(fallback)


def describe(deployment: Deployment, outcome: Outcome) -> str:
    if isinstance(outcome, str):
        return f"served in {deployment.set_of.get(outcome)}"
    return f"failed {outcome.code().name}"


MOVED = (300, 349)  # hz.a.2's buckets 300..349 go to hz.b.1
MOVE_BOUND = 5.0  # a correctness bound (the figure is 1 s): printed, not a target
WORKERS = 16


@pytest.mark.timeout(120)
async def test_moving_a_range_under_load_moves_its_keys_and_fails_no_call(
    zookeeper: LocalZooKeeper,
    kazoo: KazooClient,
    tenant: str,
    tmp_path: Path,
    figures: list[str],
) -> None:
    """A steady load (WORKERS callers, each cycling through its keys) while the rule moves
    a range: every call succeeds; each key's calls go to its old SET, then, from a moment
    on, to its new SET only."""
    before = rule_of(RULE)
    after = before.moved(*MOVED, before.ranges[-2].set)
    assert str(after.set_of_bucket(MOVED[0])) == "hz.b.1"
    moved = [str(k) for k in range(MOVED[0], MOVED[1] + 1)]
    keys = moved + [str(k) for k in range(0, 1000, 9) if not MOVED[0] <= k <= MOVED[1]]
    async with deployed(zookeeper.url, tenant) as deployment:
        consumer = await ready_consumer(zookeeper, kazoo, tenant, tmp_path, deployment)
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service=SERVICE, timeout=5.0)
        calls: list[tuple[str, float, Outcome]] = []  # (key, when the call started, outcome)
        pushed_at: list[float] = []

        async def worker(mine: list[str]) -> None:
            while not pushed_at or time.monotonic() < pushed_at[0] + 2.0:
                for key in mine:
                    start = time.monotonic()
                    calls.append((key, start, await say_hello(stub, key)))

        try:
            running = [asyncio.create_task(worker(keys[i::WORKERS])) for i in range(WORKERS)]
            await wait_until(lambda: len(calls) > 2 * len(keys), 10, "the load running")
            seen: list[float] = []
            consumer.rules(SERVICE).on_change("set", lambda: seen.append(time.monotonic()))

            def write() -> float:
                push_rule(kazoo, tenant, "set", after.to_document())
                return time.monotonic()  # in the writing thread: the loop's delays left out

            pushed_at.append(time.monotonic())
            acked = await asyncio.to_thread(write)
            await asyncio.gather(*running)
        finally:
            await consumer.close()
    assert [c for c in calls if not isinstance(c[2], str)] == []
    push = pushed_at[0]
    old_until: dict[str, float] = {}  # the start of each key's last call in its old SET
    new_from: dict[str, float] = {}  # the start of each key's first call in its new SET
    wrong = []
    for key, start, outcome in calls:
        where = deployment.set_of[str(outcome)]
        old, new = str(before.which(key)[1]), str(after.which(key)[1])
        if where == new:
            new_from.setdefault(key, start)
        if where == old and old != new:
            old_until[key] = start
            if key in new_from:  # back in the old SET after the new one
                wrong.append((key, start - push, where))
        elif where not in (old, new):
            wrong.append((key, start - push, where))
    assert wrong == []
    assert all(new_from[k] >= push for k in moved)
    assert set(new_from) == set(keys), "some keys never landed under the new rule"
    last_old = max(old_until.get(k, push) for k in moved)
    assert last_old - push < MOVE_BOUND  # from the write's start: the write's time counts
    first_new = sorted(new_from[k] - acked for k in moved)
    figures.append(
        f"SET move of buckets {MOVED[0]}..{MOVED[1]} (hz.a.2 -> hz.b.1) under a load of "
        f"{WORKERS} callers: {len(calls)} calls, 0 failed; from ZooKeeper acknowledging the "
        f"write ({(acked - push) * 1000:.0f} ms after it began): the consumer had the rule "
        f"after {(seen[0] - acked) * 1000:.0f} ms, the last call to the old SET started "
        f"after {max(0.0, last_old - acked) * 1000:.0f} ms, the moved keys' first calls in "
        f"the new SET after p50 {first_new[len(first_new) // 2] * 1000:.0f} ms, "
        f"max {first_new[-1] * 1000:.0f} ms"
    )


BAD_RULES: dict[str, object] = {
    "overlapping ranges": {
        **RULE,
        "ranges": [
            {"from": 0, "to": 600, "set": "hz.a.1"},
            {"from": 500, "to": 999, "set": "hz.b.1"},
        ],
    },
    "missing ranges": {**RULE, "ranges": [{"from": 0, "to": 899, "set": "hz.b.1"}]},
    "SET name syntax": {**RULE, "ranges": [{"from": 0, "to": 999, "set": "HZ.a.1"}]},
    "SET name parts": {**RULE, "ranges": [{"from": 0, "to": 999, "set": "hz.a"}]},
    "buckets 0": {**RULE, "buckets": 0, "ranges": [{"from": 0, "to": 0, "set": "hz.b.1"}]},
    "buckets 100001": {
        **RULE,
        "buckets": 100_001,
        "ranges": [{"from": 0, "to": 100_000, "set": "hz.b.1"}],
    },
    "unknown key": {**RULE, "ranges": [{"from": 0, "to": 999, "set": "hz.b.1"}], "cells": 3},
    "unknown on_empty": {
        **RULE,
        "ranges": [{"from": 0, "to": 999, "set": "hz.b.1"}],
        "on_empty": "any",
    },
    "not JSON": b'{"schema": 1, "buckets": 1000, "ranges": [',
}


async def test_bad_rules_are_refused_and_the_last_good_one_keeps_routing(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path
) -> None:
    rule = rule_of(RULE)
    keys = [str(k) for k in range(0, 1000, 3)]
    async with deployed(zookeeper.url, tenant) as deployment:
        consumer = await ready_consumer(zookeeper, kazoo, tenant, tmp_path, deployment)
        try:
            stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service=SERVICE, timeout=5.0)
            rules = consumer.rules(SERVICE)
            for count, (why, document) in enumerate(BAD_RULES.items(), start=1):
                await asyncio.to_thread(push_rule, kazoo, tenant, "set", document)
                await wait_until(lambda n=count: rules.rejected == n, 10, f"refusing {why}")
                assert rules.get(SetRule) == rule, why
                assert misrouted(rule, deployment, keys, await call_all(stub, keys)) == [], why
        finally:
            await consumer.close()


async def test_every_call_kind_stays_in_its_set(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path
) -> None:
    """Streams with the key in metadata (the rule's `key`), and a client stream with no
    key at all from a consumer that lives in hz.b.1, which goes to hz.b.1."""
    rule = rule_of(RULE)
    keys = [str(k) for k in random.Random(6).sample(range(10**9), 60)]
    async with deployed(zookeeper.url, tenant) as deployment:
        consumer = await ready_consumer(
            zookeeper, kazoo, tenant, tmp_path, deployment, set_name="hz.b.1"
        )
        try:
            stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service=SERVICE, timeout=5.0)
            wrong = []
            landed: Counter[str] = Counter()
            for key in keys:
                owner = str(rule.which(key)[1])
                metadata = ((KEY, key),)
                names = [greeter_pb2.HelloRequest(name=n) for n in ("ann", "bob")]
                served = {
                    "unary_stream": [
                        r.served_by
                        async for r in stub.StreamHellos(
                            greeter_pb2.HelloRequest(name="x", count=2), metadata=metadata
                        )
                    ],
                    "stream_unary": [
                        (await stub.CollectHellos(iter(names), metadata=metadata)).served_by
                    ],
                    "stream_stream": [
                        r.served_by async for r in stub.Chat(iter(names), metadata=metadata)
                    ],
                    "stream_unary no key": [(await stub.CollectHellos(iter(names))).served_by],
                }
                for kind, addresses in served.items():
                    want = "hz.b.1" if kind.endswith("no key") else owner
                    if {deployment.set_of[a] for a in addresses} != {want}:
                        wrong.append((key, kind, want, addresses))
                landed[owner] += 1
        finally:
            await consumer.close()
    assert wrong == []
    assert set(landed) == set(SETS)


@pytest.fixture
async def set_providers() -> AsyncIterator[Callable[[str, str, str], Awaitable[ProviderProcess]]]:
    """Start provider processes of a SET; every one still running is killed at the end."""
    started: list[ProviderProcess] = []

    async def start(registry: str, tenant: str, set_name: str) -> ProviderProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.set_provider_process",
            registry,
            tenant,
            set_name,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
        )
        provider = ProviderProcess(process, "")
        started.append(provider)
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode().strip()
        assert line.startswith("serving "), line
        provider.address = line.removeprefix("serving ")
        return provider

    yield start
    for provider in started:
        await provider.stop()


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_a_set_whose_provider_processes_are_killed_fails_alone_naming_it(
    zookeeper: LocalZooKeeper,
    kazoo: KazooClient,
    tenant: str,
    tmp_path: Path,
    figures: list[str],
    set_providers: Callable[[str, str, str], Awaitable[ProviderProcess]],
) -> None:
    """SIGKILL: the providers stay listed until their sessions expire, so the consumer
    finds them unusable (connect failures, ejection) before it finds them gone."""
    rule = rule_of(RULE)
    keys = [str(k) for k in range(0, 1000, 2)]
    victims = {k for k in keys if str(rule.which(k)[1]) == VICTIM}
    processes = await asyncio.gather(
        *(set_providers(zookeeper.url, tenant, s) for s in SETS for _ in range(2))
    )
    homes = [s for s in SETS for _ in range(2)]
    deployment = Deployment(set_of={p.address: s for p, s in zip(processes, homes, strict=True)})
    consumer = csf.Consumer(zookeeper.url, tenant, "killed", snapshot_dir=tmp_path / "c")
    async with consumer:
        await asyncio.to_thread(push_rule, kazoo, tenant, "set", RULE)
        directory = consumer.directory(SERVICE)
        await wait_until(lambda: len(directory.endpoints) == len(processes), 10, "providers")
        await wait_until(lambda: consumer.rules(SERVICE).get(SetRule) == rule, 10, "the rule")
        stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service=SERVICE, timeout=2.0)
        assert misrouted(rule, deployment, keys, await call_all(stub, keys)) == []
        killed_at = time.monotonic()
        for process in processes:
            if deployment.set_of[process.address] == VICTIM:
                process.signal(signal.SIGKILL)
        others_wrong: list[tuple[str, str, Outcome]] = []
        victim_outcomes: Counter[str] = Counter()
        settled_after = None
        while settled_after is None:
            outcomes = await call_all(stub, keys)
            others_wrong += [
                w for w in misrouted(rule, deployment, keys, outcomes) if w[0] not in victims
            ]
            mine = [(k, o) for k, o in zip(keys, outcomes, strict=True) if k in victims]
            victim_outcomes.update(describe(deployment, o) for _, o in mine)
            if all(as_expected(rule, deployment, k, o) for k, o in mine):
                settled_after = time.monotonic() - killed_at
            assert time.monotonic() - killed_at < 60, f"{VICTIM}'s errors never named it"
    assert others_wrong == []
    figures.append(
        f"SIGKILL of {VICTIM}'s 2 provider processes: its calls {dict(victim_outcomes)}, "
        f"every one failing naming the SET after {settled_after:.2f} s; other SETs' calls "
        f"failed or misrouted: {len(others_wrong)}"
    )
