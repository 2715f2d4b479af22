"""Filters of the consumer's own, added or replacing built-in ones by name, on real calls."""

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from kazoo.client import KazooClient

import csf
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from demo.providers import Greeter
from tests.conftest import counted, push_rule, serving, unavailable, wait_until

Request = greeter_pb2.HelloRequest
SAY_HELLO = "/demo.Greeter/SayHello"
GREETER_METHODS = [
    f"/demo.Greeter/{name}" for name in ("SayHello", "StreamHellos", "CollectHellos", "Chat")
]
IDEMPOTENT = {"SayHello": csf.MethodConfig(idempotent=True)}


@dataclass
class Seen:
    method: str
    attempt: int
    endpoint: str | None


@dataclass
class Spy:
    """A filter factory whose filters note each Invocation they pass on."""

    built_for: list[str] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    only: Callable[[csf.MethodContext], bool] = lambda ctx: True

    def __call__(self, ctx: csf.MethodContext) -> csf.Filter | None:
        self.built_for.append(ctx.method)
        if not self.only(ctx):
            return None

        async def spy(inv: csf.Invocation, next: csf.Invoker, /) -> Any:
            address = inv.endpoint.address if inv.endpoint is not None else None
            self.seen.append(Seen(inv.method, inv.attempt, address))
            return await next(inv)

        return spy


def consumer(
    zookeeper: LocalZooKeeper,
    tenant: str,
    tmp_path: Path,
    chain: tuple[str, ...] = csf.DEFAULT_CONSUMER_CHAIN,
    **filters: csf.FilterFactory,
) -> csf.Consumer:
    return csf.Consumer(registry=zookeeper.url, tenant=tenant, app="test",
                        snapshot_dir=tmp_path / "snapshots", chain=chain,
                        filters=filters)  # fmt: skip


async def test_an_added_filter_sees_every_call_and_every_attempt_where_it_stands(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    calls: Counter[str] = Counter()
    outer, inner = Spy(), Spy()
    # `outer` stands before load balancing, `inner` after it (innermost).
    chain = ("outer", *csf.DEFAULT_CONSUMER_CHAIN, "inner")
    async with (
        serving(zookeeper.url, tenant, counted(calls, "down", unavailable), counted(calls, "up"))
        as (down, up),
        consumer(zookeeper, tenant, tmp_path, chain, outer=outer, inner=inner) as user,
    ):  # fmt: skip
        stub = user.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5, retries=2,
                         methods=IDEMPOTENT)  # fmt: skip
        directory = user.directory("XIESR")
        await wait_until(lambda: len(directory.endpoints) == 2, 10, "both providers")
        replies = [await stub.SayHello(Request(name="x")) for _ in range(6)]
        assert {reply.served_by for reply in replies} == {up.address}

        assert outer.seen == [Seen(SAY_HELLO, 0, None)] * 6, "once a call, before any pick"
        assert len(inner.seen) == calls.total(), "once an attempt, every attempt"
        assert {s.method for s in inner.seen} == {SAY_HELLO}
        assert [s.attempt for s in inner.seen].count(0) == 6
        assert calls["down"] >= 1
        for before, after in zip(inner.seen, inner.seen[1:], strict=False):
            if after.attempt > 0:  # a retry follows a failed attempt on the other provider
                assert (before.endpoint, after.endpoint) == (down.address, up.address)
                assert after.attempt == before.attempt + 1
        assert [s.endpoint for s in inner.seen].count(down.address) == calls["down"]


async def test_a_filter_replacing_retry_by_name_makes_one_attempt(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    calls: Counter[str] = Counter()
    passed: list[int] = []

    def no_retry(ctx: csf.MethodContext) -> csf.Filter:
        async def pass_through(inv: csf.Invocation, next: csf.Invoker, /) -> Any:
            passed.append(inv.attempt)
            return await next(inv)

        return pass_through

    async with (
        serving(zookeeper.url, tenant, counted(calls, "down", unavailable)),
        consumer(zookeeper, tenant, tmp_path / "builtin") as builtin,
        consumer(zookeeper, tenant, tmp_path / "own", retry=no_retry) as own,
    ):
        for user, attempts in ((builtin, 3), (own, 1)):
            stub = user.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5,
                             retries=2, methods=IDEMPOTENT)  # fmt: skip
            calls.clear()
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.SayHello(Request(name="x"))
            assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
            assert calls["down"] == attempts
        assert passed == [0], "the replacement ran in place of the retry filter"


async def test_a_factory_is_called_once_per_method_not_per_call(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    spy = Spy()
    async with (
        serving(zookeeper.url, tenant, Greeter),
        consumer(zookeeper, tenant, tmp_path, (*csf.DEFAULT_CONSUMER_CHAIN, "spy"), spy=spy)
        as user,
    ):  # fmt: skip
        stub = user.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5)
        for _ in range(5):
            await stub.SayHello(Request(name="x"))
        assert len(spy.seen) == 5
        assert sorted(spy.built_for) == sorted(GREETER_METHODS), "each method built once"


def nothing(ctx: csf.MethodContext) -> None:
    """A factory that leaves every method without its filter."""
    return None


async def test_a_factory_returning_none_leaves_the_method_without_that_filter(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path
) -> None:
    calls: Counter[str] = Counter()
    spy = Spy(only=lambda ctx: ctx.method_name != "SayHello")
    chain = (*csf.DEFAULT_CONSUMER_CHAIN, "spy")
    async with (
        serving(zookeeper.url, tenant, counted(calls, "up")),
        consumer(zookeeper, tenant, tmp_path / "builtin") as builtin,
        consumer(zookeeper, tenant, tmp_path / "own", chain, spy=spy, breaker=nothing) as own,
    ):
        guarded = builtin.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5)
        unguarded = own.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5)
        document = json.dumps({"schema": 1, "force": "open"}).encode()
        await asyncio.to_thread(push_rule, kazoo, tenant, "breaker", document)
        users = (builtin, own)
        await wait_until(
            lambda: all(u.rules("XIESR").current["breaker"] is not None for u in users),
            10,
            "the rule in both consumers",
        )

        with pytest.raises(csf.CircuitOpenError):
            await guarded.SayHello(Request(name="x"))
        assert calls["up"] == 0
        replies = [await unguarded.SayHello(Request(name="x")) for _ in range(3)]
        assert [reply.message for reply in replies] == ["hi x"] * 3
        assert calls["up"] == 3, "no breaker in this consumer's chain"
        assert sorted(spy.built_for) == sorted(GREETER_METHODS) and spy.seen == []


@pytest.mark.parametrize(
    ("chain", "complaint"),
    [
        (("fallback", "nosuch", "load_balance"), "unknown filter 'nosuch'"),
        (("fallback", "breaker", "retry"), "must include 'load_balance'"),
        (("retry", "retry", "load_balance"), "appears twice"),
    ],
)
def test_a_chain_naming_an_unknown_filter_or_lacking_load_balance_is_a_config_error(
    chain: tuple[str, ...], complaint: str
) -> None:
    with pytest.raises(csf.ConfigError, match=complaint):
        csf.Consumer(registry="zk://127.0.0.1:2181", tenant="T", app="test", chain=chain)
