"""Concurrency and rate limits on both sides, over scripted calls (no network).

The waits here are bounded by a rule's max_wait_ms or a call's deadline; a test never
asserts how long one took, only whether the call got in."""

import asyncio
import time
from typing import Any

import grpc
import pytest

import csf
from csf import compose
from csf.resilience._limits import acquire_within, admit_or_abort
from csf.resilience.concurrency import ConcurrencyFilter, ExecutesGuard
from csf.resilience.ratelimit import RateLimitFilter, RateLimitGuard, _bucket
from tests.conftest import wait_until
from tests.resilience.fakes import (
    METHOD,
    Aborted,
    Held,
    Provider,
    ServicerContext,
    context,
    invocation,
    rpc_error,
    service_rules,
)

EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


def _later(seconds: float, callback: Any) -> None:
    asyncio.get_running_loop().call_later(seconds, callback)


# -- waiting for a permit ----------------------------------------------------------------


async def test_no_time_to_wait_means_no_permit_and_no_stray_coroutine() -> None:
    semaphore = asyncio.Semaphore(1)
    assert not await acquire_within(semaphore.acquire(), 0)
    assert not await acquire_within(semaphore.acquire(), -1)
    assert not semaphore.locked(), "nothing was taken"


async def test_a_permit_is_taken_when_free_or_freed_in_time_and_not_otherwise() -> None:
    semaphore = asyncio.Semaphore(1)
    assert await acquire_within(semaphore.acquire(), 5)
    assert not await acquire_within(semaphore.acquire(), 0.01)
    _later(0.01, semaphore.release)
    assert await acquire_within(semaphore.acquire(), 0.5)
    assert semaphore.locked()


async def test_a_provider_call_waits_for_a_permit_no_longer_than_its_deadline() -> None:
    semaphore = asyncio.Semaphore(0)
    _later(1.0, semaphore.release)
    context = ServicerContext(time_remaining=0.01)
    with pytest.raises(Aborted):
        await admit_or_abort(context, semaphore.acquire(), 60, "busy")  # type: ignore[arg-type]
    assert context.aborted == (EXHAUSTED, "busy")
    no_deadline = ServicerContext(time_remaining=None)
    await admit_or_abort(no_deadline, semaphore.acquire(), 60, "busy")  # type: ignore[arg-type]
    assert no_deadline.aborted is None


# -- the concurrency filter (consumer side) -----------------------------------------------


async def _in_flight(call: Any, held: Held, count: int) -> list[asyncio.Task[Any]]:
    """Start `count` calls and wait until the provider holds them all."""
    before = held.entered
    tasks = [asyncio.ensure_future(call(invocation(time.monotonic() + 60))) for _ in range(count)]
    await wait_until(lambda: held.entered == before + count, 5, f"{count} calls in flight")
    return tasks


async def test_without_a_rule_calls_in_flight_are_not_limited() -> None:
    held = Held()
    tasks = await _in_flight(compose([ConcurrencyFilter(context())], held), held, 20)
    held.release.set()
    assert await asyncio.gather(*tasks) == ["ok"] * 20


async def test_over_the_consumer_limit_a_call_is_refused_at_once() -> None:
    rules, _ = service_rules(concurrency={"consumer": 2})
    held = Held()
    call = compose([ConcurrencyFilter(context(rules))], held)
    tasks = await _in_flight(call, held, 2)
    with pytest.raises(csf.ConcurrencyLimitError) as caught:
        await call(invocation(time.monotonic() + 60))
    assert caught.value.code() is EXHAUSTED
    assert caught.value.details() == f"{METHOD}: too many calls in flight"
    held.release.set()
    assert await asyncio.gather(*tasks) == ["ok", "ok"]
    assert await call(invocation(time.monotonic() + 60)) == "ok"


async def test_a_call_over_the_limit_waits_up_to_max_wait_ms_for_a_place() -> None:
    rules, _ = service_rules(concurrency={"consumer": 1, "max_wait_ms": 60_000})
    held = Held()
    call = compose([ConcurrencyFilter(context(rules))], held)
    first = await _in_flight(call, held, 1)
    waiting = asyncio.ensure_future(call(invocation(time.monotonic() + 60)))
    _later(0.05, held.release.set)
    assert await asyncio.gather(*first, waiting) == ["ok", "ok"]


async def test_the_wait_for_a_place_ends_after_max_wait_ms() -> None:
    rules, _ = service_rules(concurrency={"consumer": 1, "max_wait_ms": 20})
    held = Held()
    call = compose([ConcurrencyFilter(context(rules))], held)
    first = await _in_flight(call, held, 1)
    _later(1.0, held.release.set)  # well after 20 ms
    with pytest.raises(csf.ConcurrencyLimitError):
        await call(invocation(time.monotonic() + 60))
    assert await asyncio.gather(*first) == ["ok"]


async def test_the_wait_for_a_place_ends_at_the_calls_deadline() -> None:
    rules, _ = service_rules(concurrency={"consumer": 1, "max_wait_ms": 60_000})
    held = Held()
    call = compose([ConcurrencyFilter(context(rules))], held)
    first = await _in_flight(call, held, 1)
    _later(1.0, held.release.set)  # after the next call's deadline
    with pytest.raises(csf.ConcurrencyLimitError):
        await call(invocation(time.monotonic() + 0.02))
    assert await asyncio.gather(*first) == ["ok"]


async def test_a_place_comes_back_after_errors_and_cancellation() -> None:
    rules, _ = service_rules(concurrency={"consumer": 1})
    limited = ConcurrencyFilter(context(rules))
    for end in (rpc_error(grpc.StatusCode.UNAVAILABLE), ValueError("bug")):
        with pytest.raises(type(end)):
            await compose([limited], Provider(end))(invocation(time.monotonic() + 60))
    held = Held()
    (cancelled,) = await _in_flight(compose([limited], held), held, 1)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert await compose([limited], Provider())(invocation(time.monotonic() + 60)) == "ok"


async def test_a_new_limit_applies_to_new_calls_and_old_calls_keep_their_permits() -> None:
    rules, feed = service_rules(concurrency={"consumer": 1})
    held = Held()
    call = compose([ConcurrencyFilter(context(rules))], held)
    tasks = await _in_flight(call, held, 1)
    feed.push("concurrency", consumer=2)
    tasks += await _in_flight(call, held, 2)
    with pytest.raises(csf.ConcurrencyLimitError):
        await call(invocation(time.monotonic() + 60))
    feed.delete("concurrency")
    tasks += await _in_flight(call, held, 10)
    held.release.set()
    assert await asyncio.gather(*tasks) == ["ok"] * 13


async def test_a_rule_change_for_other_methods_keeps_this_method_s_permits_and_tokens() -> None:
    rules, feed = service_rules(concurrency={"consumer": 1})
    held = Held()
    call = compose([ConcurrencyFilter(context(rules))], held)
    tasks = await _in_flight(call, held, 1)
    feed.push("concurrency", consumer=1, methods={"Other": {"consumer": 5}})
    with pytest.raises(csf.ConcurrencyLimitError):
        await call(invocation(time.monotonic() + 60))
    held.release.set()
    await asyncio.gather(*tasks)

    rules, feed = service_rules(ratelimit={"side": "consumer", "rate": 1, "burst": 1})
    limited = compose([RateLimitFilter(context(rules))], Provider())
    await limited(invocation(time.monotonic() + 60))
    feed.push("ratelimit", side="consumer", rate=1, burst=1, methods={"Other": {"rate": 9}})
    with pytest.raises(csf.RateLimitedError):  # the bucket was not refilled by the push
        await limited(invocation(time.monotonic() + 60))


async def test_a_limit_for_another_method_does_not_limit_this_one() -> None:
    rules, feed = service_rules(concurrency={"methods": {"Other": {"consumer": 1}}})
    held = Held()
    call = compose([ConcurrencyFilter(context(rules))], held)
    tasks = await _in_flight(call, held, 3)
    feed.push("concurrency", methods={"M": {"consumer": 1}})
    tasks += await _in_flight(call, held, 1)
    with pytest.raises(csf.ConcurrencyLimitError):
        await call(invocation(time.monotonic() + 60))
    held.release.set()
    await asyncio.gather(*tasks)


# -- the executes guard (provider side) ---------------------------------------------------


async def test_executes_limits_the_handlers_running_at_once() -> None:
    guard = ExecutesGuard(METHOD, 1, None)
    async with guard(ServicerContext()):  # type: ignore[arg-type]
        assert guard.running == 1
        refused = ServicerContext()
        with pytest.raises(Aborted):
            async with guard(refused):  # type: ignore[arg-type]
                pytest.fail("the handler must not run")
        assert refused.aborted == (EXHAUSTED, f"{METHOD}: too many calls at once on this provider")
        assert guard.running == 1
    assert guard.running == 0
    with pytest.raises(ValueError, match="bug"):
        async with guard(ServicerContext()):  # type: ignore[arg-type]
            raise ValueError("bug")
    async with guard(ServicerContext()):  # type: ignore[arg-type]
        assert guard.running == 1, "the permit came back after the error"


async def test_without_max_wait_ms_a_handler_over_the_limit_is_refused_at_once() -> None:
    guard = ExecutesGuard(METHOD, 1, None)
    holder = guard(ServicerContext())  # type: ignore[arg-type]
    await holder.__aenter__()
    _later(2.0, lambda: asyncio.ensure_future(holder.__aexit__(None, None, None)))
    with pytest.raises(Aborted):
        async with guard(ServicerContext()):  # type: ignore[arg-type]
            pass
    await wait_until(lambda: guard.running == 0, 5, "the first handler's end")


async def test_without_executes_or_a_rule_handlers_are_not_limited() -> None:
    guard = ExecutesGuard(METHOD, None, service_rules()[0])
    contexts = [guard(ServicerContext()) for _ in range(10)]  # type: ignore[arg-type]
    for permit in contexts:
        await permit.__aenter__()
    assert guard.running == 10
    for permit in contexts:
        await permit.__aexit__(None, None, None)
    assert guard.running == 0


async def test_the_rules_provider_limit_overrides_executes_for_its_method() -> None:
    rules, feed = service_rules(concurrency={"methods": {"M": {"provider": 2}}})
    guard = ExecutesGuard(METHOD, 1, rules)
    first, second = guard(ServicerContext()), guard(ServicerContext())  # type: ignore[arg-type]
    await first.__aenter__()
    await second.__aenter__()
    assert guard.running == 2
    await first.__aexit__(None, None, None)
    await second.__aexit__(None, None, None)
    feed.push("concurrency", consumer=5)  # no provider limit: executes again
    async with guard(ServicerContext()):  # type: ignore[arg-type]
        with pytest.raises(Aborted):
            async with guard(ServicerContext()):  # type: ignore[arg-type]
                pass


async def test_a_handlers_wait_for_a_place_ends_after_max_wait_ms() -> None:
    rules, _ = service_rules(concurrency={"provider": 1, "max_wait_ms": 20})
    guard = ExecutesGuard(METHOD, None, rules)
    holder = guard(ServicerContext())  # type: ignore[arg-type]
    await holder.__aenter__()
    _later(1.0, lambda: asyncio.ensure_future(holder.__aexit__(None, None, None)))
    with pytest.raises(Aborted):
        async with guard(ServicerContext(time_remaining=None)):  # type: ignore[arg-type]
            pass
    await wait_until(lambda: guard.running == 0, 5, "the first handler's end")


async def test_a_handler_over_the_limit_waits_up_to_max_wait_ms_within_its_deadline() -> None:
    rules, _ = service_rules(concurrency={"provider": 1, "max_wait_ms": 60_000})
    guard = ExecutesGuard(METHOD, None, rules)
    holder = guard(ServicerContext())  # type: ignore[arg-type]
    await holder.__aenter__()
    _later(0.05, lambda: asyncio.ensure_future(holder.__aexit__(None, None, None)))
    async with guard(ServicerContext(time_remaining=None)):  # type: ignore[arg-type]
        assert guard.running == 1
    await holder.__aenter__()
    _later(1.0, lambda: asyncio.ensure_future(holder.__aexit__(None, None, None)))
    late = ServicerContext(time_remaining=0.02)
    with pytest.raises(Aborted):
        async with guard(late):  # type: ignore[arg-type]
            pass
    assert late.aborted is not None and late.aborted[0] is EXHAUSTED
    await wait_until(lambda: guard.running == 0, 5, "the first handler's end")


# -- rate limits ------------------------------------------------------------------------


def test_the_bucket_holds_a_twentieth_of_a_second_unless_burst_is_given() -> None:
    for fields, burst, period, wait in [
        ({"rate": 100}, 5, 0.05, 0.0),
        ({"rate": 10}, 1, 0.1, 0.0),  # at least one token
        ({"rate": 2, "burst": 4, "max_wait_ms": 250}, 4, 2, 0.25),
    ]:
        rules, _ = service_rules(ratelimit=fields)
        limiter, max_wait = _bucket(rules, "M", "consumer")
        assert limiter is not None
        assert (limiter.max_rate, limiter.time_period, max_wait) == (burst, period, wait)
    rules, _ = service_rules(ratelimit={"rate": 10, "side": "provider"})
    assert _bucket(rules, "M", "consumer") == (None, 0.0)
    assert _bucket(service_rules(ratelimit={"burst": 5})[0], "M", "consumer") == (None, 0.0)
    assert _bucket(None, "M", "provider") == (None, 0.0)


async def test_a_consumer_rate_limit_admits_its_burst_then_refuses() -> None:
    rules, feed = service_rules(ratelimit={"rate": 1, "burst": 3})
    call = compose([RateLimitFilter(context(rules))], Provider())
    for _ in range(3):
        assert await call(invocation(time.monotonic() + 60)) == "ok"
    with pytest.raises(csf.RateLimitedError) as caught:
        await call(invocation(time.monotonic() + 60))
    assert caught.value.code() is EXHAUSTED
    assert caught.value.details() == f"{METHOD}: over the rate limit"
    feed.delete("ratelimit")
    for _ in range(20):
        assert await call(invocation(time.monotonic() + 60)) == "ok"


async def test_a_rate_limit_for_the_method_applies_to_it() -> None:
    rules, feed = service_rules(ratelimit={"methods": {"M": {"rate": 1, "burst": 1}}})
    call = compose([RateLimitFilter(context(rules))], Provider())
    assert await call(invocation(time.monotonic() + 60)) == "ok"
    with pytest.raises(csf.RateLimitedError):
        await call(invocation(time.monotonic() + 60))
    feed.push("ratelimit", methods={"Other": {"rate": 1, "burst": 1}})
    for _ in range(5):
        assert await call(invocation(time.monotonic() + 60)) == "ok"


async def test_a_provider_side_rule_does_not_limit_the_consumer() -> None:
    rules, _ = service_rules(ratelimit={"rate": 1, "burst": 1, "side": "provider"})
    call = compose([RateLimitFilter(context(rules))], Provider())
    for _ in range(5):
        assert await call(invocation(time.monotonic() + 60)) == "ok"


async def test_a_call_without_a_token_waits_up_to_max_wait_ms_within_its_deadline() -> None:
    rules, _ = service_rules(ratelimit={"rate": 20, "burst": 1, "max_wait_ms": 60_000})
    call = compose([RateLimitFilter(context(rules))], Provider())
    assert await call(invocation(time.monotonic() + 60)) == "ok"
    assert await call(invocation(time.monotonic() + 60)) == "ok", "a token came in 50 ms"
    rules, _ = service_rules(ratelimit={"rate": 2, "burst": 1, "max_wait_ms": 60_000})
    call = compose([RateLimitFilter(context(rules))], Provider())
    assert await call(invocation(time.monotonic() + 60)) == "ok"
    with pytest.raises(csf.RateLimitedError):  # the next token is 500 ms away
        await call(invocation(time.monotonic() + 0.02))


async def test_a_provider_rate_limit_admits_its_burst_then_aborts() -> None:
    rules, feed = service_rules(ratelimit={"rate": 1, "burst": 2, "side": "provider"})
    guard = RateLimitGuard(METHOD, rules)
    for _ in range(2):
        async with guard(ServicerContext()):  # type: ignore[arg-type]
            pass
    refused = ServicerContext(time_remaining=None)
    with pytest.raises(Aborted):
        async with guard(refused):  # type: ignore[arg-type]
            pytest.fail("the handler must not run")
    assert refused.aborted == (EXHAUSTED, f"{METHOD}: over the rate limit")
    feed.push("ratelimit", rate=1, burst=1)  # the consumer's: no limit here
    for _ in range(5):
        async with guard(ServicerContext()):  # type: ignore[arg-type]
            pass


async def test_a_provider_rate_limit_for_the_method_applies_to_it() -> None:
    rules, _ = service_rules(
        ratelimit={"side": "provider", "methods": {"M": {"rate": 1, "burst": 1}}}
    )
    guard = RateLimitGuard(METHOD, rules)
    async with guard(ServicerContext()):  # type: ignore[arg-type]
        pass
    with pytest.raises(Aborted):
        async with guard(ServicerContext()):  # type: ignore[arg-type]
            pass
    other = RateLimitGuard("/p.S/Other", rules)
    for _ in range(5):
        async with other(ServicerContext()):  # type: ignore[arg-type]
            pass


async def test_a_provider_call_without_a_token_waits_within_max_wait_ms() -> None:
    rules, _ = service_rules(
        ratelimit={"rate": 2, "burst": 1, "side": "provider", "max_wait_ms": 60_000}
    )
    guard = RateLimitGuard(METHOD, rules)
    for _ in range(2):  # the second waits about 500 ms for its token
        async with guard(ServicerContext(time_remaining=None)):  # type: ignore[arg-type]
            pass
    no_time = ServicerContext(time_remaining=0.0)
    with pytest.raises(Aborted):
        async with guard(no_time):  # type: ignore[arg-type]
            pass


async def test_a_provider_without_rules_is_not_rate_limited() -> None:
    guard = RateLimitGuard(METHOD, None)
    for _ in range(5):
        async with guard(ServicerContext()):  # type: ignore[arg-type]
            pass
