"""The breaker and fallback filters over a scripted provider (no network), and what
counts as a provider's failure."""

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
import pytest

import csf
from csf import compose
from csf.observability import Telemetry
from csf.resilience.breaker import State
from csf.resilience.circuit import BreakerFilter
from csf.resilience.classify import FAILURE_CODES, is_failure, status_of
from csf.resilience.fallback import FallbackFilter
from csf.resilience.retry import RetryFilter
from tests.conftest import wait_until
from tests.resilience.clock import FakeClock
from tests.resilience.fakes import Provider, context, invocation, rpc_error, service_rules

FAILURES = sorted(FAILURE_CODES, key=lambda code: code.name)
BUSINESS_ERRORS = [grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT,
                   grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.ALREADY_EXISTS,
                   grpc.StatusCode.FAILED_PRECONDITION]  # fmt: skip
REFUSALS = [csf.NoProviderError("none"), csf.CircuitOpenError("open"),
            csf.RateLimitedError("rate"), csf.ConcurrencyLimitError("busy")]  # fmt: skip


def test_provider_failures_are_the_codes_of_a_provider_in_trouble() -> None:
    assert {code for code in grpc.StatusCode if is_failure(code)} == {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DATA_LOSS,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }


def test_the_status_of_a_call_is_read_from_the_error_it_ended_with() -> None:
    assert status_of(None) is grpc.StatusCode.OK
    assert status_of(rpc_error(grpc.StatusCode.NOT_FOUND)) is grpc.StatusCode.NOT_FOUND
    assert status_of(asyncio.CancelledError()) is grpc.StatusCode.CANCELLED
    assert status_of(ValueError()) is grpc.StatusCode.UNKNOWN


async def _outcome(call: Callable[..., Any]) -> Any:
    """The answer of one call, or the error it raised."""
    try:
        return await call(invocation(1e9))
    except Exception as error:
        return error


# -- the breaker filter ------------------------------------------------------------------


async def test_provider_failures_open_the_breaker_and_then_it_fails_fast() -> None:
    rules, _ = service_rules(breaker={"min_calls": 2, "error_ratio": 0.5})
    provider = Provider(grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL)
    call = compose([BreakerFilter(context(rules))], provider)
    for _ in range(2):
        with pytest.raises(grpc.aio.AioRpcError):
            await call(invocation(1e9))
    inv = invocation(1e9)
    with pytest.raises(csf.CircuitOpenError) as caught:
        await call(inv)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert caught.value.details() == "circuit open for S /p.S/M"
    assert inv.breaker_state == "open"
    assert len(provider.calls) == 2


async def test_business_errors_and_csf_refusals_do_not_open_the_breaker() -> None:
    rules, _ = service_rules(breaker={"min_calls": 2, "error_ratio": 0.5})
    breaker = BreakerFilter(context(rules))
    provider = Provider(*[rpc_error(code) for code in BUSINESS_ERRORS], *REFUSALS, ValueError())
    call = compose([breaker], provider)
    for _ in range(len(provider.script)):
        assert isinstance(await _outcome(call), Exception)
    assert breaker.state is State.CLOSED
    inv = invocation(1e9)
    assert await call(inv) == "ok"
    assert inv.breaker_state == "closed"


async def test_quick_calls_are_not_slow_and_slow_ones_are() -> None:
    rules, feed = service_rules(breaker={"min_calls": 2, "slow_ratio": 0.5})
    breaker = BreakerFilter(context(rules))
    for _ in range(5):
        assert await compose([breaker], Provider())(invocation(1e9)) == "ok"
    assert breaker.state is State.CLOSED, "well under the default slow_call_ms of 1000"

    async def slow(inv: Any) -> str:
        await asyncio.sleep(0.01)
        return "ok"

    feed.push("breaker", min_calls=2, slow_ratio=0.5, slow_call_ms=1)
    for _ in range(5):  # 5 slow of 10
        assert await compose([breaker], slow)(invocation(1e9)) == "ok"
    assert breaker.state is State.OPEN


async def test_a_probe_that_ends_without_an_answer_frees_its_place() -> None:
    rules, _ = service_rules(breaker={"min_calls": 1, "open_s": 0.5, "half_open_probes": 1})
    breaker = BreakerFilter(context(rules))
    await _outcome(compose([breaker], Provider(grpc.StatusCode.UNAVAILABLE)))
    assert breaker.state is State.OPEN
    await wait_until(lambda: breaker.state is State.HALF_OPEN, 5, "the half-open state")

    async def cancelled(inv: Any) -> Any:
        raise asyncio.CancelledError

    for end in (csf.NoProviderError("none"), ValueError("bug")):
        assert await _outcome(compose([breaker], Provider(end))) is end
    with pytest.raises(asyncio.CancelledError):
        await compose([breaker], cancelled)(invocation(1e9))
    inv = invocation(1e9)
    assert await compose([breaker], Provider())(inv) == "ok", "the probe's place is free"
    assert inv.breaker_state == "half_open"
    assert breaker.state is State.CLOSED


async def test_a_breaker_rule_for_the_method_applies_to_it() -> None:
    rules, feed = service_rules(breaker={"methods": {"M": {"force": "open"}}})
    call = compose([BreakerFilter(context(rules))], Provider())
    assert isinstance(await _outcome(call), csf.CircuitOpenError)
    feed.push("breaker", methods={"Other": {"force": "open"}})
    assert await _outcome(call) == "ok"


async def test_a_forced_rule_pins_the_breaker_and_deleting_it_restores_the_defaults() -> None:
    rules, feed = service_rules(breaker={"force": "open"})
    provider = Provider(*[grpc.StatusCode.UNAVAILABLE] * 30)
    call = compose([BreakerFilter(context(rules))], provider)
    assert isinstance(await _outcome(call), csf.CircuitOpenError)
    assert provider.calls == []
    feed.push("breaker", force="closed", min_calls=1)
    for _ in range(10):
        assert not isinstance(await _outcome(call), csf.CircuitOpenError)
    feed.delete("breaker")  # the defaults: 20 calls at an error ratio of 0.5
    outcomes = [await _outcome(call) for _ in range(21)]
    assert [isinstance(o, csf.CircuitOpenError) for o in outcomes] == [False] * 20 + [True]


class Instruments:
    """Records the gauges a filter registers."""

    def __init__(self) -> None:
        self.gauges: dict[str, Callable[[], list[tuple[int, dict[str, str]]]]] = {}

    def watch(self, name: str, gauge: Any) -> None:
        self.gauges[name] = gauge


async def test_the_breaker_gauge_reads_closed_half_open_and_open() -> None:
    instruments = Instruments()
    telemetry = Telemetry(None, None, instruments)  # type: ignore[arg-type]
    rules, _ = service_rules(breaker={"min_calls": 1, "open_s": 0.5})
    breaker = BreakerFilter(context(rules, telemetry=telemetry))
    gauge = instruments.gauges["breaker"]
    assert gauge() == [(0, {"csf.service": "S", "rpc.method": "M"})]
    await _outcome(compose([breaker], Provider(grpc.StatusCode.UNAVAILABLE)))
    assert gauge()[0][0] == 2
    await wait_until(lambda: breaker.state is State.HALF_OPEN, 5, "the half-open state")
    assert gauge()[0][0] == 1


# -- the fallback filter -----------------------------------------------------------------


class Fallback:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, BaseException]] = []

    async def __call__(self, request: Any, error: BaseException) -> str:
        self.calls.append((request, error))
        return "fallback"


@pytest.mark.parametrize(
    "error", [rpc_error(code) for code in FAILURES] + REFUSALS, ids=lambda e: e.code().name
)
async def test_the_fallback_answers_failures_and_refusals(error: grpc.aio.AioRpcError) -> None:
    fallback = Fallback()
    inv = invocation(1e9)
    assert await compose([FallbackFilter(context(fallback=fallback))], Provider(error))(inv) == (
        "fallback"
    )
    assert fallback.calls == [("request", error)]
    assert inv.fallback_used and inv.failure is error


@pytest.mark.parametrize("code", BUSINESS_ERRORS, ids=lambda code: code.name)
async def test_business_errors_pass_the_fallback_by(code: grpc.StatusCode) -> None:
    fallback = Fallback()
    inv = invocation(1e9)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await compose([FallbackFilter(context(fallback=fallback))], Provider(code))(inv)
    assert caught.value.code() is code
    assert fallback.calls == [] and not inv.fallback_used and inv.failure is None


async def test_without_a_fallback_failures_and_other_errors_are_raised() -> None:
    for error in (rpc_error(grpc.StatusCode.UNAVAILABLE), csf.NoProviderError("none")):
        assert await _outcome(compose([FallbackFilter(context())], Provider(error))) is error
    bug = ValueError("bug")
    with_fallback = context(fallback=Fallback())
    assert await _outcome(compose([FallbackFilter(with_fallback)], Provider(bug))) is bug


async def test_a_degrade_rule_answers_its_methods_calls_until_it_is_deleted() -> None:
    rules, feed = service_rules(degrade={"methods": {"M": {"all": True}}})
    fallback = Fallback()
    provider = Provider()
    call = compose([FallbackFilter(context(rules, fallback=fallback))], provider)
    inv = invocation(1e9)
    assert await call(inv) == "fallback"
    assert provider.calls == [] and inv.fallback_used
    ((_, error),) = fallback.calls
    assert isinstance(error, csf.DegradedError)
    assert error.details() == "S /p.S/M is degraded by the degrade rule"
    feed.push("degrade", methods={"Other": {"all": True}})
    assert await call(invocation(1e9)) == "ok"
    feed.push("degrade", all=True)
    assert await call(invocation(1e9)) == "fallback"
    feed.delete("degrade")
    assert await call(invocation(1e9)) == "ok"
    assert len(provider.calls) == 2


async def test_a_degraded_method_without_a_fallback_is_refused_unless_empty_replies_asked() -> None:
    rules, _ = service_rules(degrade={"all": True})
    provider = Provider()
    with pytest.raises(csf.DegradedError, match="degraded by the degrade rule") as refused:
        await compose([FallbackFilter(context(rules))], provider)(invocation(1e9))
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
    empty = context(rules, fallback=csf.EMPTY_REPLY)
    assert await compose([FallbackFilter(empty)], provider)(invocation(1e9)) == "empty"
    streaming = context(rules, kind="unary_stream")
    with pytest.raises(csf.DegradedError, match="degraded by the degrade rule"):
        await compose([FallbackFilter(streaming)], provider)(invocation(1e9))
    assert provider.calls == []


async def test_the_breaker_filter_runs_on_the_method_state_s_clock() -> None:
    """open_s and the window pass on the injected clock, not on the wall clock."""
    clock = FakeClock()
    rules, _ = service_rules(breaker={"min_calls": 2, "error_ratio": 0.5, "open_s": 30})
    breaker = BreakerFilter(context(rules, clock=clock))
    provider = Provider(grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE)
    call = compose([breaker], provider)
    for _ in range(2):
        with pytest.raises(grpc.aio.AioRpcError):
            await call(invocation(1e9))
    with pytest.raises(csf.CircuitOpenError):
        await call(invocation(1e9))
    clock.advance(29.9)
    assert breaker.state is State.OPEN, "30 s have not passed on the state's clock"
    clock.advance(0.2)
    assert breaker.state is State.HALF_OPEN
    for _ in range(3):  # the default three probes, all answered
        assert await call(invocation(1e9)) == "ok"
    assert breaker.state is State.CLOSED


def test_every_stub_of_a_method_shares_its_breaker_budget_and_limits() -> None:
    rules, _ = service_rules()
    shared = context(rules).state
    first, second = context(rules, state=shared), context(rules, state=shared, retries=0)
    assert BreakerFilter(first).breaker is BreakerFilter(second).breaker
    assert RetryFilter(first).budget is RetryFilter(second).budget
    assert RetryFilter(first).budget is not RetryFilter(context(rules)).budget
