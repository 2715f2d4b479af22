"""The resilience filters' logic, composed over a fake terminal (no network)."""

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import grpc
import pytest

import csf
from csf import Invocation, compose
from csf._invocation import MethodContext, MethodState
from csf.config import MethodSettings
from csf.observability import OFF
from csf.resilience import retry as retry_module
from csf.resilience.circuit import BreakerFilter
from csf.resilience.fallback import FallbackFilter
from csf.resilience.retry import RetryFilter
from csf.rules import BreakerRule, DegradeRule, RetryRule
from tests.resilience.clock import FakeClock


class FakeRules:
    """ServiceRules' interface, with rules set by the test."""

    def __init__(self, **rules: Any) -> None:
        self.rules = rules
        self.listeners: defaultdict[str, list[Callable[[], None]]] = defaultdict(list)

    def method_rule(self, kind: Any, method: str) -> Any:
        rule = self.rules.get(kind.KIND)
        return None if rule is None else rule.for_method(method)

    def get(self, kind: Any) -> Any:
        return self.rules.get(kind.KIND)

    def version(self, kind: str) -> int:
        return 0

    def on_change(self, kind: str, listener: Callable[[], None]) -> Callable[[], None]:
        self.listeners[kind].append(listener)
        return lambda: self.listeners[kind].remove(listener)

    def push(self, rule: Any) -> None:
        self.rules[rule.KIND] = rule
        for listener in self.listeners[rule.KIND]:
            listener()


def context(
    rules: FakeRules | None = None, idempotent: bool = True, retries: int = 2, fallback: Any = None
) -> MethodContext:
    settings = MethodSettings(
        timeout=1.0, retries=retries, idempotent=idempotent, cluster="c", lb="random",
        group=None, version=None, tags={},
    )  # fmt: skip
    rules = rules or FakeRules()
    return MethodContext(
        service="S", method="/p.S/M", kind="unary_unary", config=settings,
        directory=None,  # type: ignore[arg-type]
        rules=rules, state=MethodState("S", "/p.S/M", rules, OFF),
        balancer=None, fallback=fallback,  # type: ignore[arg-type]
        hash_key=None, telemetry=OFF, empty_response=lambda: "empty",
    )  # fmt: skip


def rpc_error(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), code.name, None)


class Terminal:
    """Answers each attempt from a script: a status code raises, anything else returns.

    "hang" is a frozen provider: only the attempt's deadline ends it, and `clock` (the
    retry filter's, see the `clock` fixture) jumps to that deadline at once.
    """

    def __init__(self, *script: Any, clock: FakeClock | None = None) -> None:
        self.script = list(script)
        self.clock = clock
        self.attempts: list[int] = []
        self.attempt_deadlines: list[float | None] = []

    async def __call__(self, inv: Invocation) -> Any:
        self.attempts.append(inv.attempt)
        self.attempt_deadlines.append(inv.attempt_deadline)
        outcome = self.script.pop(0) if self.script else "ok"
        if outcome == "hang":
            assert self.clock is not None, "a hanging attempt needs the fake clock"
            self.clock.now = max(self.clock.now, inv.attempt_deadline or inv.deadline)
            raise rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED)
        if isinstance(outcome, grpc.StatusCode):
            raise rpc_error(outcome)
        return outcome


def invocation(seconds: float = 1.0, clock: Callable[[], float] = time.monotonic) -> Invocation:
    return Invocation("S", "/p.S/M", "request", None, clock() + seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The retry filter's clock, which only frozen attempts move (back-off takes no time)."""
    clock = FakeClock(1024.0)  # with deadlines in eighths of a second, every sum is exact
    monkeypatch.setattr(retry_module, "time", SimpleNamespace(monotonic=clock))
    return clock


async def test_failover_retries_unavailable_until_success() -> None:
    terminal = Terminal(grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE, "ok")
    assert await compose([RetryFilter(context())], terminal)(invocation()) == "ok"
    assert terminal.attempts == [0, 1, 2]


@pytest.mark.parametrize(
    ("idempotent", "failure"),
    [
        (False, grpc.StatusCode.UNAVAILABLE),
        (True, grpc.StatusCode.INVALID_ARGUMENT),
        (True, grpc.StatusCode.RESOURCE_EXHAUSTED),
    ],
)
async def test_failover_does_not_retry_what_it_must_not(
    idempotent: bool, failure: grpc.StatusCode
) -> None:
    terminal = Terminal(failure, "ok")
    with pytest.raises(grpc.aio.AioRpcError):
        await compose([RetryFilter(context(idempotent=idempotent))], terminal)(invocation())
    assert len(terminal.attempts) == 1


async def test_csf_refusals_are_not_retried() -> None:
    async def refuse(inv: Invocation) -> Any:
        raise csf.NoProviderError("none")

    with pytest.raises(csf.NoProviderError):
        await compose([RetryFilter(context())], refuse)(invocation())


async def test_a_frozen_provider_takes_only_its_share_of_the_deadline(clock: FakeClock) -> None:
    terminal = Terminal("hang", "ok", clock=clock)
    inv = invocation(0.75, clock)
    assert await compose([RetryFilter(context())], terminal)(inv) == "ok"
    assert terminal.attempts == [0, 1]
    # The first of three attempts gets a third of 0.75 s; the second twice that at
    # least (a slow method must not be cut short by its own retries): all that is left.
    assert terminal.attempt_deadlines == [1024.25, 1024.75]


async def test_retries_never_go_past_the_deadline(clock: FakeClock) -> None:
    terminal = Terminal("hang", "hang", "hang", "hang", clock=clock)
    inv = invocation(0.5, clock)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await compose([RetryFilter(context(retries=3))], terminal)(inv)
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert terminal.attempts == [0, 1, 2]
    assert terminal.attempt_deadlines == [1024.125, 1024.375, 1024.5]
    assert clock.now == inv.deadline, "the last attempt ended at the call's deadline"


async def test_the_budget_caps_retries() -> None:
    rules = FakeRules(retry=RetryRule(budget_ratio=0.1, budget_min_per_s=0))
    retry = RetryFilter(context(rules))
    failing = Terminal(*[grpc.StatusCode.UNAVAILABLE] * 10_000)
    calls = 200
    for _ in range(calls):
        with pytest.raises(grpc.aio.AioRpcError):
            await compose([retry], failing)(invocation())
    assert len(failing.attempts) <= calls * 1.1 + 1


async def test_failfast_failsafe_and_rule_changes() -> None:
    rules = FakeRules(retry=RetryRule(cluster="failfast"))
    retry = RetryFilter(context(rules))
    terminal = Terminal(grpc.StatusCode.UNAVAILABLE)
    with pytest.raises(grpc.aio.AioRpcError):
        await compose([retry], terminal)(invocation())
    assert len(terminal.attempts) == 1

    rules.push(RetryRule(cluster="failsafe"))
    inv = invocation()
    assert await compose([retry], Terminal(grpc.StatusCode.UNAVAILABLE))(inv) == "empty"
    assert inv.fallback_used


async def test_forking_takes_the_first_success_and_cancels_the_rest() -> None:
    started: list[int] = []
    cancelled: list[int] = []

    async def terminal(inv: Invocation) -> Any:
        started.append(inv.attempt)
        try:
            await asyncio.sleep(0.01 if inv.attempt == 1 else 5)
        except asyncio.CancelledError:
            cancelled.append(inv.attempt)
            raise
        return f"from {inv.attempt}"

    rules = FakeRules(retry=RetryRule(cluster="forking", retries=2))
    assert await compose([RetryFilter(context(rules))], terminal)(invocation()) == "from 1"
    assert sorted(started) == [0, 1, 2] and sorted(cancelled) == [0, 2]


async def test_the_fallback_answers_failures_but_not_business_errors() -> None:
    async def fallback(request: Any, error: BaseException) -> str:
        return f"fallback for {request}"

    ctx = context(fallback=fallback)
    inv = invocation()
    assert await compose([FallbackFilter(ctx)], Terminal(grpc.StatusCode.UNAVAILABLE))(inv) == (
        "fallback for request"
    )
    assert inv.fallback_used
    with pytest.raises(grpc.aio.AioRpcError):
        await compose([FallbackFilter(ctx)], Terminal(grpc.StatusCode.NOT_FOUND))(invocation())


async def test_a_degrade_rule_forces_the_fallback_and_lifting_it_restores_calls() -> None:
    rules = FakeRules()
    fallback = FallbackFilter(context(rules, fallback=csf.EMPTY_REPLY))
    terminal = Terminal()
    assert await compose([fallback], terminal)(invocation()) == "ok"
    rules.push(DegradeRule(methods={"M": {"all": True}}))
    assert await compose([fallback], terminal)(invocation()) == "empty"
    rules.push(DegradeRule())
    assert await compose([fallback], terminal)(invocation()) == "ok"
    assert len(terminal.attempts) == 2


async def test_the_breaker_filter_opens_and_fails_fast() -> None:
    rules = FakeRules(breaker=BreakerRule(min_calls=5, error_ratio=0.5))
    breaker = BreakerFilter(context(rules))
    failing = Terminal(*[grpc.StatusCode.UNAVAILABLE] * 5)
    for _ in range(5):
        with pytest.raises(grpc.aio.AioRpcError):
            await compose([breaker], failing)(invocation())
    with pytest.raises(csf.CircuitOpenError) as caught:
        await compose([breaker], failing)(invocation())
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert len(failing.attempts) == 5
    rules.push(BreakerRule(force="closed"))
    assert await compose([breaker], failing)(invocation()) == "ok"
