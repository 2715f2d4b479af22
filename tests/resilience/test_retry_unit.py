"""The retry filter's cluster modes over a scripted provider, on a fake clock (no network)."""

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import grpc
import pytest

import csf
from csf import Invocation, compose
from csf.resilience import retry
from csf.resilience.retry import RetryFilter
from tests.resilience.clock import FakeClock
from tests.resilience.fakes import Provider, context, invocation, rpc_error, service_rules

UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
DEADLINE_EXCEEDED = grpc.StatusCode.DEADLINE_EXCEEDED


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The retry module's clock (and only its clock: the event loop keeps real time)."""
    clock = FakeClock()
    monkeypatch.setattr(retry, "time", SimpleNamespace(monotonic=clock))
    return clock


class Attempts:
    """Each attempt takes `took` seconds of the fake clock (None: all of its share), then
    answers from the script."""

    def __init__(self, clock: FakeClock, *script: Any, took: float | None = None) -> None:
        self.clock = clock
        self.provider = Provider(*script)
        self.took = took
        self.numbers: list[int] = []
        self.deadlines: list[float | None] = []

    async def __call__(self, inv: Invocation) -> Any:
        self.numbers.append(inv.attempt)
        self.deadlines.append(inv.attempt_deadline)
        if self.took is None:
            assert inv.attempt_deadline is not None
            self.clock.now = inv.attempt_deadline
        else:
            self.clock.advance(self.took)
        return await self.provider(inv)


@pytest.mark.parametrize("failure", [DEADLINE_EXCEEDED, UNAVAILABLE])
async def test_failover_gives_an_attempt_an_equal_share_or_twice_the_last_one(
    clock: FakeClock, failure: grpc.StatusCode
) -> None:
    attempts = Attempts(clock, failure, "ok")
    inv = invocation(clock.now + 3)
    assert await compose([RetryFilter(context())], attempts)(inv) == "ok"
    assert attempts.numbers == [0, 1]
    # A third of 3 s, then twice that (more than half of the 2 s left).
    assert attempts.deadlines == [1_001, 1_003]


async def test_an_attempt_gets_at_least_headroom_times_the_recent_latency(
    clock: FakeClock,
) -> None:
    retrying = RetryFilter(context())
    assert await compose([retrying], Attempts(clock, "ok", took=0.5))(invocation(clock.now + 3))
    attempts = Attempts(clock, "ok", took=0.5)
    await compose([retrying], attempts)(invocation(clock.now + 3))
    start = clock.now - 0.5
    assert attempts.deadlines == [start + 2.0], "4 x 0.5 s, not a third of 3 s"


async def test_failover_tries_retries_plus_one_times_and_raises_the_last_error(
    clock: FakeClock,
) -> None:
    errors = [rpc_error(UNAVAILABLE, f"attempt {n}") for n in range(5)]
    attempts = Attempts(clock, *errors, took=0.01)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await compose([RetryFilter(context(retries=2))], attempts)(invocation(clock.now + 3))
    assert caught.value is errors[2]
    assert attempts.numbers == [0, 1, 2]


async def test_the_retry_rule_overrides_the_stubs_retries_while_it_holds(
    clock: FakeClock,
) -> None:
    rules, feed = service_rules(retry={"retries": 1})
    retrying = RetryFilter(context(rules, retries=2))

    async def attempts_of_a_failing_call() -> int:
        attempts = Attempts(clock, *[UNAVAILABLE] * 5, took=0.01)
        with pytest.raises(grpc.aio.AioRpcError):
            await compose([retrying], attempts)(invocation(clock.now + 3))
        return len(attempts.numbers)

    assert await attempts_of_a_failing_call() == 2
    feed.push("retry", retries=0)
    assert await attempts_of_a_failing_call() == 1
    feed.delete("retry")
    assert await attempts_of_a_failing_call() == 3


@pytest.mark.parametrize(
    "error",
    [
        rpc_error(grpc.StatusCode.INVALID_ARGUMENT),
        rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED),
        rpc_error(grpc.StatusCode.INTERNAL),
        csf.NoProviderError("no provider"),
        csf.CircuitOpenError("open"),
        ValueError("a bug in a filter"),
    ],
    ids=lambda error: type(error).__name__ + getattr(error, "_code", grpc.StatusCode.OK).name,
)
async def test_failover_retries_only_unavailable_and_a_spent_share(
    clock: FakeClock, error: Exception
) -> None:
    attempts = Attempts(clock, error, took=0.01)
    with pytest.raises(type(error)) as caught:
        await compose([RetryFilter(context())], attempts)(invocation(clock.now + 3))
    assert caught.value is error
    assert attempts.numbers == [0]


async def test_an_error_not_worth_a_retry_ends_the_retries(clock: FakeClock) -> None:
    attempts = Attempts(clock, UNAVAILABLE, grpc.StatusCode.INVALID_ARGUMENT, "ok", took=0.01)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await compose([RetryFilter(context(retries=2))], attempts)(invocation(clock.now + 3))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert attempts.numbers == [0, 1]


async def test_a_retry_rule_for_the_method_applies_to_it(clock: FakeClock) -> None:
    rules, feed = service_rules(retry={"methods": {"M": {"retries": 0}}})
    retrying = RetryFilter(context(rules, retries=2))
    attempts = Attempts(clock, *[UNAVAILABLE] * 5, took=0.01)
    with pytest.raises(grpc.aio.AioRpcError):
        await compose([retrying], attempts)(invocation(clock.now + 3))
    assert attempts.numbers == [0]
    feed.push("retry", methods={"Other": {"retries": 0}})
    attempts = Attempts(clock, *[UNAVAILABLE] * 5, took=0.01)
    with pytest.raises(grpc.aio.AioRpcError):
        await compose([retrying], attempts)(invocation(clock.now + 3))
    assert attempts.numbers == [0, 1, 2]


async def test_a_method_not_marked_idempotent_is_tried_once_with_the_whole_deadline(
    clock: FakeClock,
) -> None:
    attempts = Attempts(clock, UNAVAILABLE, took=0.01)
    with pytest.raises(grpc.aio.AioRpcError):
        await compose([RetryFilter(context(idempotent=False))], attempts)(invocation(1_003))
    assert attempts.numbers == [0] and attempts.deadlines == [None]


async def test_a_deadline_exceeded_when_the_call_has_no_time_left_is_final(
    clock: FakeClock,
) -> None:
    attempts = Attempts(clock, DEADLINE_EXCEEDED, took=3)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await compose([RetryFilter(context())], attempts)(invocation(clock.now + 3))
    assert caught.value.code() is DEADLINE_EXCEEDED
    assert attempts.numbers == [0]


async def test_no_retry_once_the_deadline_has_come(clock: FakeClock) -> None:
    attempts = Attempts(clock, UNAVAILABLE, took=3)
    with pytest.raises(grpc.aio.AioRpcError):
        await compose([RetryFilter(context())], attempts)(invocation(clock.now + 3))
    assert attempts.numbers == [0]


async def test_no_attempt_starts_when_its_back_off_would_end_past_the_deadline(
    clock: FakeClock,
) -> None:
    attempts = Attempts(clock, UNAVAILABLE, UNAVAILABLE, took=1.4995)
    with pytest.raises(grpc.aio.AioRpcError):
        await compose([RetryFilter(context(retries=2))], attempts)(invocation(clock.now + 3))
    assert attempts.numbers == [0, 1], "a third attempt would wait past the deadline"


async def test_the_retry_budget_of_the_rule_caps_retries(clock: FakeClock) -> None:
    rules, feed = service_rules(retry={"retries": 3, "budget_ratio": 1, "budget_min_per_s": 0})
    retrying = RetryFilter(context(rules))
    attempts = Attempts(clock, *[UNAVAILABLE] * 5, took=0.01)
    with pytest.raises(grpc.aio.AioRpcError):
        await compose([retrying], attempts)(invocation(clock.now + 3))
    assert attempts.numbers == [0, 1], "one call earns one retry at a ratio of 1"
    feed.push("retry", retries=3, budget_ratio=0, budget_min_per_s=0)
    attempts = Attempts(clock, *[UNAVAILABLE] * 5, took=0.01)
    with pytest.raises(grpc.aio.AioRpcError):
        await compose([retrying], attempts)(invocation(clock.now + 3))
    assert attempts.numbers == [0], "an empty budget allows no retry"


async def test_failfast_tries_once(clock: FakeClock) -> None:
    rules, _ = service_rules(retry={"cluster": "failfast"})
    attempts = Attempts(clock, UNAVAILABLE, took=0.01)
    with pytest.raises(grpc.aio.AioRpcError):
        await compose([RetryFilter(context(rules))], attempts)(invocation(clock.now + 3))
    assert attempts.numbers == [0]


async def _fallback(request: Any, error: BaseException) -> str:
    assert isinstance(error, grpc.aio.AioRpcError)
    return f"instead of {request}: {error.code().name}"


async def test_failsafe_answers_any_failure_with_the_fallback_and_logs_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rules, _ = service_rules(retry={"cluster": "failsafe"})
    provider = Provider(grpc.StatusCode.INVALID_ARGUMENT)
    inv = invocation(1e9)
    with caplog.at_level(logging.WARNING, logger="csf.retry"):
        answer = await compose([RetryFilter(context(rules, fallback=_fallback))], provider)(inv)
    assert answer == "instead of request: INVALID_ARGUMENT"
    assert len(provider.calls) == 1
    assert inv.fallback_used and isinstance(inv.failure, grpc.aio.AioRpcError)
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "csf.retry",
            "WARNING",
            "failsafe: S /p.S/M failed (StatusCode.INVALID_ARGUMENT); answering instead",
        )
    ]


async def test_failsafe_without_a_fallback_answers_the_empty_response() -> None:
    rules, _ = service_rules(retry={"cluster": "failsafe"})
    failsafe = compose([RetryFilter(context(rules))], Provider(UNAVAILABLE, "ok"))
    assert await failsafe(invocation(1e9)) == "empty"
    assert await failsafe(invocation(1e9)) == "ok"
    with pytest.raises(ValueError, match="not a gRPC error"):
        await compose([RetryFilter(context(rules))], Provider(ValueError("not a gRPC error")))(
            invocation(1e9)
        )


class Copies:
    """A provider for forking: the copies in `failing` fail at once, copy `winner` answers
    once one has failed, and the others wait until they are cancelled (or fail after 5 s:
    a test must not hang)."""

    def __init__(self, winner: int | None, failing: set[int]) -> None:
        self.winner = winner
        self.failing = failing
        self.one_failed = asyncio.Event()
        self.started: list[Invocation] = []
        self.cancelled: list[int] = []

    async def __call__(self, inv: Invocation) -> str:
        self.started.append(inv)
        if inv.attempt in self.failing:
            self.one_failed.set()
            raise rpc_error(UNAVAILABLE, f"copy {inv.attempt}")
        try:
            await asyncio.wait_for(self.one_failed.wait(), 5)
            if inv.attempt != self.winner:
                await asyncio.sleep(5)
                raise AssertionError(f"copy {inv.attempt} was not cancelled")
        except asyncio.CancelledError:
            self.cancelled.append(inv.attempt)
            raise
        return f"from {inv.attempt}"


async def test_forking_sends_retries_plus_one_copies_and_the_first_success_wins() -> None:
    rules, _ = service_rules(retry={"cluster": "forking", "retries": 2})
    copies = Copies(winner=1, failing={0})
    inv = invocation(1e9)
    assert await compose([RetryFilter(context(rules))], copies)(inv) == "from 1"
    assert sorted(copy.attempt for copy in copies.started) == [0, 1, 2]
    assert copies.cancelled == [2], "the copy still running is cancelled"
    assert all(copy.tried is inv.tried for copy in copies.started), "they share `tried`"


async def test_forking_fails_only_when_every_copy_fails() -> None:
    rules, _ = service_rules(retry={"cluster": "forking", "retries": 1})
    copies = Copies(winner=None, failing={0, 1})
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await compose([RetryFilter(context(rules))], copies)(invocation(1e9))
    assert caught.value.code() is UNAVAILABLE
    assert sorted(copy.attempt for copy in copies.started) == [0, 1]
