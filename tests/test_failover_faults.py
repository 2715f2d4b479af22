"""Failover under faults: providers killed, frozen or failing, under a paced load."""

import asyncio
import signal
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from kazoo.client import KazooClient

import csf
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from demo.providers import Greeter
from tests.conftest import (
    ProviderProcess,
    consumer_for,
    push_rule,
    serving,
    wait_until,
)
from tests.load import LoadResult, paced

pytestmark = pytest.mark.slow

StartProvider = Callable[..., Awaitable[ProviderProcess]]
RATE = 200
SECONDS = 6.0
DEADLINE = 1.0
IDEMPOTENT = {"SayHello": csf.MethodConfig(idempotent=True)}


async def load_with_fault(stub: Any, fault: Callable[[], None]) -> LoadResult:
    """Offer the load; the fault strikes a third of the way in."""
    result = LoadResult()
    load = asyncio.ensure_future(
        paced(lambda: stub.SayHello(greeter_pb2.HelloRequest(name="x")), RATE, SECONDS, result)
    )
    await wait_until(lambda: result.offered >= RATE * SECONDS / 3, SECONDS, "the load under way")
    fault()
    return await load


class FaultWatch:
    """A filter after load_balance: the attempts sent to the `faulty` provider, told apart
    by what the consumer knew of it when each was sent."""

    def __init__(self, faulty: str) -> None:
        self.faulty = faulty
        self.directory: Any = None
        self.struck = False
        self.learned = False  # after the fault, it was seen ejected, unable to connect or gone
        self.sent = 0
        self.sent_before_fault = 0
        self.sent_after_learning = 0
        self.sent_while_out = 0  # sent while it was ejected or gone: should never happen

    def strike(self, provider: ProviderProcess, fault: signal.Signals) -> None:
        self.sent_before_fault = self.sent
        self.struck = True
        provider.signal(fault)

    def factory(self, ctx: csf.MethodContext) -> csf.Filter:
        self.directory = ctx.directory
        return self

    async def __call__(self, inv: csf.Invocation, next: csf.Invoker, /) -> Any:
        endpoint = self.directory.endpoints.get(self.faulty)
        out = endpoint is None or endpoint.outlier.ejected()
        self.learned = self.learned or (self.struck and (out or not endpoint.usable))
        assert inv.endpoint is not None
        if inv.endpoint.address == self.faulty:
            self.sent += 1
            self.sent_after_learning += self.learned
            self.sent_while_out += out
        return await next(inv)


@pytest.mark.parametrize("fault", [signal.SIGKILL, signal.SIGSTOP])
async def test_a_provider_killed_or_frozen_under_load_fails_no_call(
    fault: signal.Signals,
    zookeeper: LocalZooKeeper,
    tenant: str,
    tmp_path: Path,
    providers: StartProvider,
    figures: list[str],
) -> None:
    registry = f"{zookeeper.url}?session_timeout=2"
    started = [await providers(registry, tenant) for _ in range(3)]
    watch = FaultWatch(started[0].address)
    chain = list(csf.DEFAULT_CONSUMER_CHAIN)
    chain.insert(chain.index("load_balance") + 1, "fault_watch")
    consumer = csf.Consumer(
        registry=zookeeper.url,
        tenant=tenant,
        app="test",
        snapshot_dir=tmp_path,
        chain=chain,
        filters={"fault_watch": watch.factory},
    )
    async with consumer:
        stub = consumer.stub(
            greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=DEADLINE, methods=IDEMPOTENT
        )
        directory = consumer.directory("XIESR")
        await wait_until(lambda: len(directory.endpoints) == 3, 10, "three providers")
        result = await load_with_fault(stub, lambda: watch.strike(started[0], fault))
        figures.append(
            f"{fault.name} of 1 of 3 providers at {RATE}/s: {result.summary()}; attempts to it "
            f"after the fault {watch.sent - watch.sent_before_fault}, after the consumer "
            f"learned of it {watch.sent_after_learning}"
        )
        assert result.failed == 0, result.summary()
        assert watch.learned, "the consumer saw it unusable or gone while the load ran"
        assert watch.sent_while_out == 0, "no attempt went to it while ejected or gone"
        await wait_until(lambda: watch.faulty not in directory.endpoints, 15, "it left the view")


def failing(counter: Counter[str], name: str) -> type[Greeter]:
    async def say_hello(self: Greeter, request: Any, context: Any) -> Any:
        counter[name] += 1
        await context.abort(grpc.StatusCode.UNAVAILABLE, "failing on purpose")

    cls = type(f"Failing{name}", (Greeter,), {"SayHello": say_hello})
    return csf.provider(service="XIESR", warmup=0)(cls)


def counted(counter: Counter[str], name: str) -> type[Greeter]:
    async def say_hello(self: Greeter, request: Any, context: Any) -> Any:
        counter[name] += 1
        return greeter_pb2.HelloReply(message="ok", served_by=name)

    cls = type(f"Counted{name}", (Greeter,), {"SayHello": say_hello})
    return csf.provider(service="XIESR", warmup=0)(cls)


async def test_a_provider_failing_every_call_costs_few_extra_attempts(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path, figures: list[str]
) -> None:
    attempts: Counter[str] = Counter()
    servicers = (failing(attempts, "bad"), counted(attempts, "a"), counted(attempts, "b"))
    async with (
        serving(zookeeper.url, tenant, *servicers),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        # 2 s, not 1: each of three attempts gets a third, and a loaded machine can stall one.
        stub = consumer.stub(
            greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=2.0, methods=IDEMPOTENT
        )
        await wait_until(lambda: len(consumer.directory("XIESR").endpoints) == 3, 10)
        result = await paced(lambda: stub.SayHello(greeter_pb2.HelloRequest()), RATE, 5.0)
        per_call = sum(attempts.values()) / result.offered
        figures.append(
            f"1 of 3 providers failing every call: {per_call:.3f} attempts a call, "
            f"{result.failed} of {result.offered} calls failed, the failing one tried "
            f"{attempts['bad']} times"
        )
        assert result.failed == 0
        assert per_call <= 1.2


async def test_the_retry_budget_caps_attempts_when_every_provider_fails(
    zookeeper: LocalZooKeeper, kazoo: KazooClient, tenant: str, tmp_path: Path, figures: list[str]
) -> None:
    attempts: Counter[str] = Counter()
    async with (
        serving(zookeeper.url, tenant, failing(attempts, "bad")),
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
    ):
        stub = consumer.stub(
            greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=DEADLINE, methods=IDEMPOTENT
        )
        rules = consumer.rules("XIESR")
        # No floor: the floor (10 a second by default) is for services with little traffic.
        rule = {"schema": 1, "budget_ratio": 0.2, "budget_min_per_s": 0}
        await asyncio.to_thread(push_rule, kazoo, tenant, "retry", rule)
        # The breaker would open and spare the provider anyway: hold it closed, test the budget.
        await asyncio.to_thread(
            push_rule, kazoo, tenant, "breaker", {"schema": 1, "force": "closed"}
        )
        await wait_until(lambda: None not in (rules.current["retry"], rules.current["breaker"]), 10)
        result = await paced(lambda: stub.SayHello(greeter_pb2.HelloRequest()), RATE, 5.0)
        per_call = attempts["bad"] / result.offered
        figures.append(
            f"every provider failing, retries=2, budget 20%: {per_call:.3f} attempts a call"
        )
        assert result.failed == result.offered
        assert 1.0 <= per_call <= 1.2
