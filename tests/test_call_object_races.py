"""The call objects at the edges of a call's life, driven by a fake chain (no network)."""

import asyncio

import grpc

from csf import Invocation
from csf._calls import GovernedUnaryUnaryCall


def _invocation() -> Invocation:
    return Invocation("S", "/p.S/M", "request", None, deadline=1e9)


async def test_cancel_just_after_the_call_ended_fails_and_the_response_stands() -> None:
    async def answer(inv: Invocation) -> str:
        return "response"

    for waiting in (False, True):  # with and without a done callback waiting
        call: GovernedUnaryUnaryCall[str, str] = GovernedUnaryUnaryCall(answer, _invocation())
        heard: list[object] = []
        if waiting:
            call.add_done_callback(heard.append)
        await asyncio.sleep(0)  # the chain has run; its done callbacks have not
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
