"""A CSF stub's call objects answer as grpc.aio's do, method by method, at every moment.

Each test makes the same call twice against one provider whose handler the test holds,
releases or aborts: once through a plain `grpc.aio` channel to the provider, once through
a CSF stub. It brings both calls to the same moment of their life, records what every
method of the call object answers then (`Recorder.record`), and the records must be equal
but where ON_PURPOSE says why not. The plain channel has the options of CSF's provider
channels: gRPC's own retries, which CSF turns off, word an expired deadline differently.
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
# can answer answers within milliseconds on 127.0.0.1: from what the call already knows.
SETTLE = 0.2
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
    if task.cancelled():  # the probe raised CancelledError
        return "CancelledError"
    error = task.exception()
    if isinstance(error, grpc.aio.AioRpcError):
        return ("AioRpcError", error.code(), same_details(error.details()))
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


def same_details(details: str | None) -> str | None:
    """gRPC's details of an expired deadline: which end's timer fired first (a race on
    127.0.0.1) decides between two wordings of the same thing."""
    return "Deadline Exceeded" if details == "Stream removed (Deadline Exceeded)" else details


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


async def details(call: Any) -> str | None:
    return same_details(await call.details())


async def awaited(call: Any) -> Any:
    return await call


async def iterated(call: Any) -> list[Any]:
    return [reply async for reply in call]


async def drain(call: Any) -> list[Any]:
    replies = []
    while (reply := await call.read()) is not grpc.aio.EOF:
        replies.append(reply)
    return replies


async def write(call: Any) -> None:
    await call.write(Request(name="w"))


@dataclass
class Recorder:
    """Records what each method of one call object answers at one moment; the probes
    still waiting go on until `settle`."""

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
            "done callbacks so far": list(self.done_callbacks),
        }
        added: list[bool] = []
        call.add_done_callback(lambda finished: added.append(finished is call))
        seen["add_done_callback() runs it at once"] = list(added)
        # The probes that only look run at once, each on its own.
        probes: dict[str, Callable[[], Coroutine[Any, Any, Any]]] = {
            "code()": call.code,
            "details()": lambda: details(call),
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
                if seen["read()"] != "waiting":
                    seen["read() again"] = await probe(call.read(), self.pending)
            else:
                seen["async for"] = await probe(iterated(call), self.pending)
        if self.kind in ("stream_unary", "stream_stream"):
            seen["write()"] = await probe(write(call), self.pending)
            seen["done_writing()"] = await probe(call.done_writing(), self.pending)
            seen["write() after done_writing()"] = await probe(write(call), self.pending)
            seen["done_writing() again"] = await probe(call.done_writing(), self.pending)
        seen["done callbacks"] = list(self.done_callbacks)
        seen["added done callback"] = list(added)
        return seen

    def watch(self, call: Any) -> None:
        call.add_done_callback(lambda finished: self.done_callbacks.append(finished is call))

    async def settle(self) -> None:
        """Let the probes still waiting finish (the call is over by now)."""
        if self.pending:
            await asyncio.wait(self.pending, timeout=SETTLE)
            for task in self.pending:
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task
                else:
                    outcome(task)  # its error retrieved: asyncio logs none


MOMENTS = (
    "held",
    "initial_metadata_sent",
    "ended_ok",
    "aborted",
    "cancelled_after_opening",
    "cancelled_before_opening",
    "deadline_passed",
    "refused",
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
    if moment == "initial_metadata_sent" and kind != "unary_unary":
        # (grpc.aio gives a unary call's initial metadata only with its end.)
        assert tuple(await asyncio.wait_for(call.initial_metadata(), TIMEOUT)) == EARLY
    if moment == "cancelled_after_opening":
        recorder.driven = {"cancel()": call.cancel(), "cancel() again": call.cancel()}
    if moment in ("ended_ok", "aborted") and kind in ("unary_stream", "stream_stream"):
        # A stream is over once its replies are read, not before.
        read = drain(call) if recorder.style == "read" else iterated(call)
        recorder.driven["replies to the end"] = await probe(read, recorder.pending)
    if moment in ("ended_ok", "aborted", "deadline_passed", "refused"):
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
) -> AsyncIterator[tuple[tuple[Any, Any], tuple[Any, Any]]]:
    """A plain grpc.aio stub of the provider and a CSF stub of its service; then a plain
    stub of a port nobody listens on and a CSF stub of a service nobody provides."""
    async with (
        greeter_server(zookeeper.url, tenant, ScriptedGreeter) as server,
        consumer_for(zookeeper.url, tenant, tmp_path) as consumer,
        grpc.aio.insecure_channel(server.address, options=CHANNEL_OPTIONS) as channel,
        grpc.aio.insecure_channel("127.0.0.1:1", options=CHANNEL_OPTIONS) as nowhere,
    ):
        serving = (
            greeter_pb2_grpc.GreeterStub(channel),
            consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=TIMEOUT),
        )
        refusing = (
            greeter_pb2_grpc.GreeterStub(nowhere),
            consumer.stub(greeter_pb2_grpc.GreeterStub, service="NOBODY", timeout=TIMEOUT),
        )
        yield serving, refusing


CASES = [
    pytest.param(
        kind, style, moment, id=f"{kind}-{style}-{moment}" if style else f"{kind}-{moment}"
    )
    for kind in KINDS
    for style in (("read", "iterate") if kind in ("unary_stream", "stream_stream") else ("",))
    for moment in MOMENTS
]


# Where CSF answers differently on purpose: (kind, moment, method) -> grpc.aio's answer,
# CSF's. grpc.aio's wait_for_connection() of a stream-request call cancelled before its
# metadata went out waits forever; CSF's raises CancelledError, as every kind's does
# once cancelled after opening.
ON_PURPOSE = {
    (kind, "cancelled_before_opening", "wait_for_connection()"): ("waiting", "CancelledError")
    for kind in ("stream_unary", "stream_stream")
}


def reworded(record: dict[str, object], details: object) -> dict[str, object]:
    """`record` with `details` put as "<why refused>" wherever an answer gives them."""

    def put(value: object) -> object:
        if value == details:
            return "<why refused>"
        if isinstance(value, tuple):
            return tuple(put(item) for item in value)
        return value

    return {method: put(answer) for method, answer in record.items()}


@pytest.mark.parametrize(("kind", "style", "moment"), CASES)
async def test_a_csf_call_answers_as_a_grpc_aio_call(
    stubs: tuple[tuple[Any, Any], tuple[Any, Any]], kind: str, style: str, moment: str
) -> None:
    raw, governed = stubs[moment == "refused"]
    expected = await life(raw, kind, moment, style)
    got = await life(governed, kind, moment, style)
    for (where, when, method), answers in ON_PURPOSE.items():
        if (where, when) == (kind, moment):
            assert (expected.pop(method), got.pop(method)) == answers
    if moment == "refused":
        # On purpose: CSF says why no provider could take the call where gRPC says why
        # it could not connect; both are UNAVAILABLE AioRpcErrors (csf.NoProviderError).
        assert str(got["details()"]).startswith("no provider of")
        expected = reworded(expected, expected["details()"])
        got = reworded(got, got["details()"])
    assert got == expected


async def test_a_refused_call_raises_no_provider_error(
    stubs: tuple[tuple[Any, Any], tuple[Any, Any]],
) -> None:
    _, (_, governed) = stubs
    with pytest.raises(csf.NoProviderError) as caught:
        await governed.SayHello(Request(name="a"))
    assert isinstance(caught.value, grpc.aio.AioRpcError)
