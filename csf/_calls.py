"""The call objects of CSF stubs: grpc.aio's call interfaces over a run of the chain.

A unary call runs the chain to the response: in the task that awaits it, when awaited
at once (almost every call is), else in a task of its own. A stream's task runs the
chain to the provider call it opened, which the object then forwards to. They answer as
grpc.aio's call objects do at every moment of a call's life (tests/test_call_objects.py
compares them).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Generator
from typing import Any, TypeVar, cast

import grpc
from grpc.aio import Metadata

from csf._invocation import Invocation, Invoker
from csf.resilience.classify import status_of

RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")

# grpc.aio's details of a call cancelled on the caller's side.
CANCELLED_DETAILS = "Locally cancelled by application!"
# grpc.aio's words for a write to a call that is over.
FINISHED_DETAILS = "RPC already finished."
CANCELLED = grpc.StatusCode.CANCELLED


class TaskCall:
    """The RpcContext and Call parts of a call object whose chain's outcome is `self._task`
    (the task running it, or a future its runner settles).

    As in grpc.aio, a call is done the moment cancel() succeeds, its done callbacks run
    then (at once if added later), and cancelled() means it ended CANCELLED. A unary
    call watches its chain's end only once a done callback asks for it (most never do,
    and each watch costs the event loop a callback)."""

    _task: asyncio.Future[Any]
    _inv: Invocation
    _watches_its_chain = False

    def __init__(self, invoker: Invoker, inv: Invocation) -> None:
        self._inv = inv
        self._cancelled = False
        self._ended = False
        self._callbacks: list[Callable[[Any], None]] = []
        self._task = asyncio.ensure_future(invoker(inv))
        if self._watches_its_chain:
            self._task.add_done_callback(self._chain_ended)

    def _chain_ended(self, task: asyncio.Future[Any]) -> None:
        self._end()

    def _end(self) -> None:
        """The call is over: run its done callbacks, once."""
        if not self._ended:
            self._ended = True
            callbacks, self._callbacks = self._callbacks, []
            for callback in callbacks:
                callback(self)

    def _chain_code(self) -> grpc.StatusCode:
        """The status the finished chain task ended with."""
        task = self._task
        return status_of(asyncio.CancelledError() if task.cancelled() else task.exception())

    def cancelled(self) -> bool:
        return self._cancelled or (self.done() and self._chain_code() is CANCELLED)

    def done(self) -> bool:
        # With done callbacks waiting, the call is done once they have run.
        return self._ended or (not self._callbacks and self._over())

    def time_remaining(self) -> float | None:
        return max(0.0, self._inv.deadline - time.monotonic())

    def _over(self) -> bool:
        """The call has ended, though its done callbacks may not have run yet."""
        return self._task.done()

    def cancel(self) -> bool:
        if self.done():  # cancelled before, or over
            return False
        if self._over():  # ended a moment ago: too late to cancel, as in grpc.aio
            self._end()
            return False
        self._cancelled = True
        self._stop()
        self._end()
        return True

    def _stop(self) -> None:
        self._task.cancel()

    def add_done_callback(self, callback: Callable[[Any], None]) -> None:
        if self.done():
            self._ended = True
            callback(self)  # over already: at once, as in grpc.aio
            return
        if not self._callbacks and not self._watches_its_chain:
            self._task.add_done_callback(self._chain_ended)
        self._callbacks.append(callback)

    async def _outcome(self) -> BaseException | None:
        await asyncio.wait([self._task])
        if self._cancelled or self._task.cancelled():
            return asyncio.CancelledError()
        return self._task.exception()

    async def _provider_call(self) -> Any:
        """The provider call of the current attempt once there is one; None if the chain
        ended without one."""
        inv = self._inv
        if inv.call is None and not self._task.done():
            if inv.call_waiter is None:  # one for every waiter
                inv.call_waiter = asyncio.get_running_loop().create_future()
            await asyncio.wait([inv.call_waiter, self._task], return_when=asyncio.FIRST_COMPLETED)
        return inv.call

    async def code(self) -> grpc.StatusCode:
        return status_of(await self._outcome())

    async def details(self) -> str:
        error = await self._outcome()
        if isinstance(error, grpc.aio.AioRpcError):
            return error.details() or ""
        if isinstance(error, asyncio.CancelledError):
            return CANCELLED_DETAILS
        return "" if error is None else repr(error)

    async def initial_metadata(self) -> Metadata:
        call = await self._provider_call()
        return Metadata() if call is None else cast(Metadata, await call.initial_metadata())

    async def trailing_metadata(self) -> Metadata:
        error = await self._outcome()
        if isinstance(error, grpc.aio.AioRpcError):
            return cast(Metadata, error.trailing_metadata())
        call = self._inv.call
        return Metadata() if call is None else cast(Metadata, await call.trailing_metadata())

    async def wait_for_connection(self) -> None:
        call = await self._provider_call()
        if call is not None:
            await call.wait_for_connection()
        elif (error := await self._outcome()) is not None:
            raise error


class GovernedUnaryUnaryCall(TaskCall, grpc.aio.UnaryUnaryCall[RequestT, ResponseT]):
    """Awaited before the loop's next turn, the chain runs in the awaiting task: no task
    of its own, no hop back to the awaiter (each costs CPU on every call). Otherwise it
    starts in a task on that turn, as a grpc.aio call starts whether awaited or not.
    `self._task` is the outcome's future either way."""

    def __init__(self, invoker: Invoker, inv: Invocation) -> None:
        self._inv = inv
        self._cancelled = False
        self._ended = False
        self._callbacks: list[Callable[[Any], None]] = []
        # A coroutine: the chain's entry is a filter or the wait for the first rules.
        self._chain = cast(Coroutine[Any, Any, Any], invoker(inv))
        loop = asyncio.get_running_loop()
        self._task = loop.create_future()
        self._runner: asyncio.Task[Any] | None = None
        """The task running the chain: its own, or the awaiter's."""
        self._start: asyncio.Handle | None = loop.call_soon(self._run_in_task)

    def _run_in_task(self) -> None:
        self._start = None  # it holds this call: let a finished call go without the GC
        runner = self._runner = asyncio.get_running_loop().create_task(self._chain)
        runner.add_done_callback(self._settle)

    def _settle(self, runner: asyncio.Future[Any]) -> None:
        if self._task.done():
            return
        if runner.cancelled():
            self._task.cancel()
        elif (error := runner.exception()) is not None:
            self._task.set_exception(error)
        else:
            self._task.set_result(runner.result())

    def __await__(self) -> Generator[Any, None, ResponseT]:
        awaiter = asyncio.current_task()
        if self._runner is not None or self._task.done() or awaiter is None:
            response: ResponseT = yield from self._task.__await__()
            return response
        assert self._start is not None, "not begun: its start is pending"
        self._start.cancel()
        self._runner = awaiter
        outcome = self._task
        try:
            response = yield from self._chain.__await__()
        except asyncio.CancelledError:
            if self._cancelled:  # cancel() cancelled the awaiter on this call's behalf
                awaiter.uncancel()
            outcome.cancel()
            raise
        except BaseException as error:
            outcome.set_exception(error)
            outcome.exception()  # raised to the awaiter: retrieved
            raise
        if self._cancelled:  # the chain answered the cancellation anyway: still cancelled
            awaiter.uncancel()
            outcome.cancel()
            raise asyncio.CancelledError
        outcome.set_result(response)
        return response

    def _stop(self) -> None:
        runner = self._runner
        if runner is None:  # not begun: it never will
            assert self._start is not None
            self._start.cancel()
            self._chain.close()
            self._task.cancel()
        else:
            runner.cancel()


class _StreamCall(TaskCall):
    """A streaming call: `self._task` runs the chain, which opens the call on a provider;
    the stream is over when the chain failed, or when that call is."""

    _watches_its_chain = True  # to cancel what it opened if a filter then failed

    def _opened_call(self) -> Any:
        """The provider call the finished chain opened; None while it runs or if it failed."""
        task = self._task
        if not task.done() or task.cancelled() or task.exception() is not None:
            return None
        return task.result()

    def _over(self) -> bool:
        call = self._opened_call()
        return self._task.done() and (call is None or bool(call.done()))

    def _chain_ended(self, task: asyncio.Future[Any]) -> None:
        call = self._opened_call()
        if call is not None:
            call.add_done_callback(lambda _: self._end())
            return
        opened = self._inv.call
        if opened is not None:  # a filter failed after the stream was opened
            opened.cancel()
        self._end()

    async def _call(self) -> Any:
        return await self._task

    def cancelled(self) -> bool:
        call = self._opened_call()
        return super().cancelled() if call is None else self._cancelled or bool(call.cancelled())

    def _stop(self) -> None:
        if self._inv.call is not None:
            self._inv.call.cancel()
        self._task.cancel()

    async def code(self) -> grpc.StatusCode:
        error = await self._outcome()
        return await self._inv.call.code() if error is None else await super().code()

    async def details(self) -> str:
        error = await self._outcome()
        return await self._inv.call.details() if error is None else await super().details()

    async def trailing_metadata(self) -> Metadata:
        error = await self._outcome()
        if error is None:
            return cast(Metadata, await self._inv.call.trailing_metadata())
        return await super().trailing_metadata()


class _StreamReader(_StreamCall):
    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        async for response in await self._call():
            yield response

    async def read(self) -> Any:
        return await (await self._call()).read()


class _StreamWriter(_StreamCall):
    async def write(self, request: Any) -> None:
        if self.done():  # grpc.aio's error for it, not the chain's
            raise asyncio.InvalidStateError(FINISHED_DETAILS)
        await (await self._call()).write(request)

    async def done_writing(self) -> None:
        if not self.done():  # as in grpc.aio, nothing to do once the call is over
            await (await self._call()).done_writing()


class GovernedUnaryStreamCall(_StreamReader, grpc.aio.UnaryStreamCall[RequestT, ResponseT]):
    pass


class GovernedStreamUnaryCall(_StreamWriter, grpc.aio.StreamUnaryCall[RequestT, ResponseT]):
    def __await__(self) -> Generator[Any, None, ResponseT]:
        call = yield from self._task.__await__()
        response: ResponseT = yield from call.__await__()
        return response


class GovernedStreamStreamCall(
    _StreamReader, _StreamWriter, grpc.aio.StreamStreamCall[RequestT, ResponseT]
):
    pass
