"""The call objects at the edges of a call's life, driven by a fake chain (no network)."""

import asyncio
import gc
import weakref

import grpc

from csf import Invocation
from csf._calls import GovernedUnaryUnaryCall


def _invocation() -> Invocation:
    return Invocation("S", "/p.S/M", "request", None, deadline=1e9)


async def _until_the_chain_ran(call: GovernedUnaryUnaryCall[str, str]) -> None:
    """Not awaited, a call's chain starts in a task on the loop's next turn: a few turns."""
    for _ in range(10):
        if call._task.done():
            return
        await asyncio.sleep(0)
    raise AssertionError("the chain did not run")


async def test_cancel_just_after_the_call_ended_fails_and_the_response_stands() -> None:
    async def answer(inv: Invocation) -> str:
        return "response"

    for waiting in (False, True):  # with and without a done callback waiting
        call: GovernedUnaryUnaryCall[str, str] = GovernedUnaryUnaryCall(answer, _invocation())
        heard: list[object] = []
        if waiting:
            call.add_done_callback(heard.append)
        await _until_the_chain_ran(call)  # its done callbacks have not run yet
        assert call.cancel() is False, "too late to cancel, as in grpc.aio"
        assert call.done() and not call.cancelled()
        assert heard == ([call] if waiting else [])
        assert await call == "response"
        assert await call.code() is grpc.StatusCode.OK
        await asyncio.sleep(0)
        assert len(heard) == int(waiting), "each callback runs once"


async def test_every_waiter_for_the_provider_call_wakes_when_it_opens() -> None:
    opened = asyncio.Event()

    async def chain(inv: Invocation) -> str:
        await opened.wait()
        inv.call = object()  # as the terminal sets it, then wakes waiters
        assert inv.call_waiter is not None
        inv.call_waiter.set_result(None)
        await asyncio.Event().wait()  # the call itself goes on
        return "never"

    call: GovernedUnaryUnaryCall[str, str] = GovernedUnaryUnaryCall(chain, _invocation())
    waiters = [asyncio.ensure_future(call._provider_call()) for _ in range(3)]
    await asyncio.sleep(0)
    opened.set()
    done, _ = await asyncio.wait(waiters, timeout=5)
    assert len(done) == 3, "each waiter woke when the call opened, not at its end"
    call.cancel()


async def test_a_call_awaited_at_once_runs_its_chain_in_the_awaiting_task() -> None:
    ran_in: list[asyncio.Task[object] | None] = []

    async def chain(inv: Invocation) -> str:
        ran_in.append(asyncio.current_task())
        return "response"

    call: GovernedUnaryUnaryCall[str, str] = GovernedUnaryUnaryCall(chain, _invocation())
    assert await call == "response"
    assert ran_in == [asyncio.current_task()], "no task of its own"
    assert call.done() and await call.code() is grpc.StatusCode.OK
    assert await call == "response", "awaited again, as a grpc.aio call can be"


async def test_cancelling_a_call_awaited_at_once_leaves_its_awaiter_uncancelled() -> None:
    entered = asyncio.Event()

    async def chain(inv: Invocation) -> str:
        entered.set()
        await asyncio.Event().wait()
        return "never"

    calls: list[GovernedUnaryUnaryCall[str, str]] = []

    async def awaiter() -> int:
        calls.append(GovernedUnaryUnaryCall(chain, _invocation()))
        try:
            await calls[0]
        except asyncio.CancelledError:
            current = asyncio.current_task()
            assert current is not None
            return current.cancelling()
        raise AssertionError("the cancelled call answered")

    task = asyncio.create_task(awaiter())
    await asyncio.wait_for(entered.wait(), 5)
    assert calls[0].cancel() is True
    assert calls[0].done() and calls[0].cancelled()
    assert await asyncio.wait_for(task, 5) == 0, "the awaiter itself was not cancelled"
    assert await calls[0].code() is grpc.StatusCode.CANCELLED


async def test_a_call_never_awaited_runs_and_can_be_cancelled_before_it_starts() -> None:
    ran: list[str] = []

    async def chain(inv: Invocation) -> str:
        ran.append("ran")
        return "response"

    started: GovernedUnaryUnaryCall[str, str] = GovernedUnaryUnaryCall(chain, _invocation())
    stopped: GovernedUnaryUnaryCall[str, str] = GovernedUnaryUnaryCall(chain, _invocation())
    assert stopped.cancel() is True
    await _until_the_chain_ran(started)
    assert ran == ["ran"], "the one not cancelled ran on its own; the other never began"
    assert await started.code() is grpc.StatusCode.OK
    assert await stopped.code() is grpc.StatusCode.CANCELLED


async def test_finished_calls_leave_no_reference_cycle_for_the_collector() -> None:
    async def chain(inv: Invocation) -> str:
        return "response"

    freed: list[weakref.ref[GovernedUnaryUnaryCall[str, str]]] = []

    def call() -> GovernedUnaryUnaryCall[str, str]:
        made: GovernedUnaryUnaryCall[str, str] = GovernedUnaryUnaryCall(chain, _invocation())
        freed.append(weakref.ref(made))
        return made

    gc.disable()  # only reference counting may free them
    try:
        await asyncio.gather(*(call() for _ in range(50)))  # each in a task of its own
        for _ in range(50):
            await call()  # each in the awaiting task
        await asyncio.sleep(0)  # the gathered calls' last callbacks
        assert [ref() for ref in freed if ref() is not None] == []
    finally:
        gc.enable()
