"""A CSF stub's call objects answer as grpc.aio's do, method by method, at every moment.

Each test makes the same call twice against one provider whose handler the test holds,
releases or aborts: once through a plain `grpc.aio` channel to the provider, once through
a CSF stub. It brings both calls to the same moment of their life, records what every
method of the call object answers then (`record`), and the two records must be equal.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

import csf
from csf.endpoint import CHANNEL_OPTIONS
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from demo.providers import Greeter
from tests.conftest import consumer_for, greeter_server, wait_until

Request = greeter_pb2.HelloRequest
Reply = greeter_pb2.HelloReply

TIMEOUT = 5.0
SHORT_TIMEOUT = 0.3
# How long a probe may take to answer before it counts as still waiting. Every probe that
# can answer answers within milliseconds on 127.0.0.1.
SETTLE = 0.15
EARLY = (("early", "sent before the reply"),)
TRAILER = (("trailer", "set by the handler"),)


@dataclass
class Script:
    """What the handler of the next call does: it is entered, may send its initial
    metadata, waits for `release`, sets trailing metadata, then answers or aborts."""

    early_metadata: bool = False
    abort: bool = False
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)


class Scripted(Greeter):
    """The Greeter, each handler running the test's current `script` before answering.
    Handlers of the stream-request kinds read no request: they answer once released."""

    script = Script()

    async def _run(self, context: Any) -> None:
        script = self.script
        script.entered.set()
        if script.early_metadata:
            await context.send_initial_metadata(EARLY)
        await script.release.wait()
        context.set_trailing_metadata(TRAILER)
        if script.abort:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "aborted on purpose")

    async def SayHello(self, request: Any, context: Any) -> Any:
        await self._run(context)
        return self._reply("one")

    async def StreamHellos(self, request: Any, context: Any) -> AsyncIterator[Any]:
        await self._run(context)
        for message in ("first", "second"):
            yield self._reply(message)

    async def CollectHellos(self, request_iterator: Any, context: Any) -> Any:
        await self._run(context)
        return self._reply("one")

    async def Chat(self, request_iterator: Any, context: Any) -> AsyncIterator[Any]:
        await self._run(context)
        for message in ("first", "second"):
            yield self._reply(message)


ScriptedGreeter = csf.provider(service="XIESR", version="1.0.0", warmup=0)(Scripted)

KINDS = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")


def start(stub: Any, kind: str, timeout: float) -> Any:
    if kind == "unary_unary":
        return stub.SayHello(Request(name="a"), timeout=timeout)
    if kind == "unary_stream":
        return stub.StreamHellos(Request(name="a"), timeout=timeout)
    if kind == "stream_unary":
        return stub.CollectHellos(timeout=timeout)
    return stub.Chat(timeout=timeout)


def outcome(task: asyncio.Future[Any]) -> object:
    """What a finished probe answered: a value, or its error by type and status."""
    if task.cancelled():
        return "task cancelled"
    error = task.exception()
    if isinstance(error, grpc.aio.AioRpcError):
        return ("AioRpcError", error.code(), error.details())
    if isinstance(error, asyncio.CancelledError):
        return "CancelledError"
    if error is not None:
        return (type(error).__name__, str(error))
    return shown(task.result())


def shown(value: object) -> object:
    if isinstance(value, Reply):
        return ("reply", value.message)
    if isinstance(value, grpc.aio.Metadata):
        return ("metadata", tuple(value))
    if value is grpc.aio.EOF:
        return "EOF"
    if isinstance(value, list):
        return [shown(item) for item in value]
    return value


def rough(seconds: float | None) -> str:
    if seconds is None:
        return "none"
    return "over" if seconds <= 0.05 else "left"


async def probe(coro: Coroutine[Any, Any, Any], pending: list[asyncio.Future[Any]]) -> object:
    """The probe's outcome, or "waiting" if it has none within SETTLE (it goes on)."""
    task = asyncio.ensure_future(coro)
    await asyncio.wait([task], timeout=SETTLE)
    if not task.done():
        pending.append(task)
        return "waiting"
    return outcome(task)


async def awaited(call: Any) -> Any:
    return await call


async def iterated(call: Any) -> list[Any]:
    return [reply async for reply in call]


async def write(call: Any) -> None:
    await call.write(Request(name="w"))


@dataclass
class Recorder:
    """Records what each method of one call object answers, moment after moment."""

    kind: str
    style: str
    pending: list[asyncio.Future[Any]] = field(default_factory=list)
    done_callbacks: list[bool] = field(default_factory=list)
    driven: dict[str, object] = field(default_factory=dict)

    async def record(self, call: Any) -> dict[str, object]:
        seen: dict[str, object] = {
            "done()": call.done(),
            "cancelled()": call.cancelled(),
            "time_remaining()": rough(call.time_remaining()),
        }
        # The probes that only look run at once, each on its own.
        probes: dict[str, Callable[[], Coroutine[Any, Any, Any]]] = {
            "code()": call.code,
            "details()": call.details,
            "initial_metadata()": call.initial_metadata,
            "trailing_metadata()": call.trailing_metadata,
            "wait_for_connection()": call.wait_for_connection,
        }
        if self.kind in ("unary_unary", "stream_unary"):
            probes["await call"] = lambda: awaited(call)
        looked = await asyncio.gather(*(probe(p(), self.pending) for p in probes.values()))
        seen.update(zip(probes, looked, strict=True))
        # Then those that change the call, in order.
        if self.kind in ("unary_stream", "stream_stream"):
            if self.style == "read":
                seen["read()"] = await probe(call.read(), self.pending)
                seen["read() again"] = await probe(call.read(), self.pending)
            else:
                seen["async for"] = await probe(iterated(call), self.pending)
        if self.kind in ("stream_unary", "stream_stream"):
            seen["write()"] = await probe(write(call), self.pending)
            seen["done_writing()"] = await probe(call.done_writing(), self.pending)
            seen["write() after done_writing()"] = await probe(write(call), self.pending)
            seen["done_writing() again"] = await probe(call.done_writing(), self.pending)
        seen["done callbacks"] = list(self.done_callbacks)
        return seen

    def watch(self, call: Any) -> None:
        call.add_done_callback(lambda finished: self.done_callbacks.append(finished is call))

    async def settle(self) -> None:
        """Let the probes still waiting finish (the call is over by now)."""
        if self.pending:
            await asyncio.wait(self.pending, timeout=TIMEOUT)
            for task in self.pending:
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task
                else:
                    outcome(task)


MOMENTS = (
    "held",
    "initial_metadata_sent",
    "ended_ok",
    "aborted",
    "cancelled_after_opening",
    "cancelled_before_opening",
    "deadline_passed",
)


async def bring(stub: Any, kind: str, moment: str, recorder: Recorder) -> Any:
    """Start a call on `stub` and bring it to `moment`; the driver's own observations
    (cancel's answers) go into `recorder.driven`."""
    script = Scripted.script = Script(
        early_metadata=moment == "initial_metadata_sent", abort=moment == "aborted"
    )
    if moment in ("ended_ok", "aborted"):
        script.release.set()
    call = start(stub, kind, SHORT_TIMEOUT if moment == "deadline_passed" else TIMEOUT)
    recorder.watch(call)
    if moment == "cancelled_before_opening":
        recorder.driven = {"cancel()": call.cancel(), "cancel() again": call.cancel()}
        return call
    if moment in ("held", "initial_metadata_sent", "cancelled_after_opening"):
        await wait_until(script.entered.is_set, TIMEOUT, "the handler entered")
    if moment == "cancelled_after_opening":
        recorder.driven = {"cancel()": call.cancel(), "cancel() again": call.cancel()}
    if moment in ("ended_ok", "aborted", "deadline_passed", "cancelled_after_opening"):
        await wait_until(call.done, TIMEOUT, f"the {kind} call done")
    return call


async def life(stub: Any, kind: str, moment: str, style: str) -> dict[str, object]:
    """Everything `stub`'s call answers at `moment`, then cancel()'s answers."""
    recorder = Recorder(kind, style)
    call = await bring(stub, kind, moment, recorder)
    try:
        seen = await recorder.record(call)
        if not recorder.driven:
            seen["cancel()"] = call.cancel()
            seen["cancel() again"] = call.cancel()
        seen.update(recorder.driven)
    finally:
        Scripted.script.release.set()
        call.cancel()
        await recorder.settle()
    return seen


@pytest.fixture
async def stubs(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> AsyncIterator[tuple[Any, Any]]:
    """A plain grpc.aio stub of the provider and a CSF stub of its service."""
    async with (
        greeter_server(zookeeper.url, tenant, ScriptedGreeter) as server,
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
        grpc.aio.insecure_channel(server.address, options=CHANNEL_OPTIONS) as channel,
    ):
        raw = greeter_pb2_grpc.GreeterStub(channel)
        governed = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=TIMEOUT)
        yield raw, governed


CASES = [
    pytest.param(kind, style, moment, id=f"{kind}-{style}-{moment}" if style else f"{kind}-{moment}")
    for kind in KINDS
    for style in (("read", "iterate") if kind in ("unary_stream", "stream_stream") else ("",))
    for moment in MOMENTS
]


@pytest.mark.parametrize(("kind", "style", "moment"), CASES)
async def test_a_csf_call_answers_as_a_grpc_aio_call(
    stubs: tuple[Any, Any], kind: str, style: str, moment: str
) -> None:
    raw, governed = stubs
    expected = await life(raw, kind, moment, style)
    got = await life(governed, kind, moment, style)
    differing = {k: (expected.get(k), got.get(k)) for k in expected.keys() | got.keys() if expected.get(k) != got.get(k)}
    print("\nEXPECTED", kind, style, moment, expected, "\nGOT", got)
    assert not differing, differing
