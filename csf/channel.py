"""GovernedChannel: a `grpc.aio.Channel` whose calls go to providers CSF chooses.

The generated stub asks the channel once per method for a multicallable; that is when
CSF resolves the method's settings and composes its filter chain. A unary call runs
the chain (ending in the chosen endpoint's own channel) in a task behind a call object
with the `grpc.aio.UnaryUnaryCall` interface. A streaming call picks its provider with
the same balancer and records its outcome on that endpoint; its call object forwards to
the provider's call once it is open.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable, Generator
from types import TracebackType
from typing import Any, TypeVar, cast

import grpc
from grpc.aio import Metadata

from csf._chain import FilterFactory, MethodContext, build_filters
from csf._exceptions import ConfigError
from csf._invocation import Invocation, Invoker, compose
from csf.auth import CallerToken
from csf.config import StubConfig
from csf.directory import Directory
from csf.endpoint import Deserializer, Endpoint, Serializer
from csf.lb import balancer
from csf.observability import OFF, Telemetry
from csf.resilience.classify import status_of
from csf.resilience.deadline import deadline_after
from csf.rule_set import ServiceRules
from csf.rules import TimeoutRule

RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")
# How often GovernedChannel.wait_for_state_change looks again at a changed provider set.
STATE_RECHECK = 0.5


def _deadline_exceeded() -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        grpc.StatusCode.DEADLINE_EXCEEDED, Metadata(), Metadata(), "Deadline Exceeded", None
    )


def _check_call_options(credentials: object, compression: object) -> None:
    if credentials is not None:
        raise ConfigError("credentials: per-call credentials are not supported by CSF stubs")
    if compression is not None:
        raise ConfigError("compression: per-call compression is not supported by CSF stubs")


class _UnaryTerminal:
    """The end of a unary chain: the call on the chosen endpoint's own channel."""

    __slots__ = ("_deserializer", "_method", "_serializer")

    def __init__(self, method: str, serializer: Serializer, deserializer: Deserializer) -> None:
        self._method = method
        self._serializer = serializer
        self._deserializer = deserializer

    def __call__(self, inv: Invocation) -> grpc.aio.UnaryUnaryCall[Any, Any]:
        remaining = (inv.attempt_deadline or inv.deadline) - time.monotonic()
        if remaining <= 0:
            raise _deadline_exceeded()
        assert inv.endpoint is not None, "load_balance must run before the endpoint"
        multicallable = inv.endpoint.callable(
            "unary_unary", self._method, self._serializer, self._deserializer
        )
        call: grpc.aio.UnaryUnaryCall[Any, Any] = multicallable(
            inv.request,
            timeout=remaining,
            metadata=inv.metadata,
            wait_for_ready=inv.wait_for_ready,
        )
        inv.call = call
        return call


class _TaskCall:
    """The RpcContext and Call parts of a call object whose work runs in `self._task`."""

    _task: asyncio.Task[Any]
    _inv: Invocation

    def cancelled(self) -> bool:
        return self._task.cancelled()

    def done(self) -> bool:
        return self._task.done()

    def time_remaining(self) -> float | None:
        return max(0.0, self._inv.deadline - time.monotonic())

    def cancel(self) -> bool:
        return self._task.cancel()

    def add_done_callback(self, callback: Callable[[Any], None]) -> None:
        self._task.add_done_callback(lambda _: callback(self))

    async def _outcome(self) -> BaseException | None:
        await asyncio.wait([self._task])
        if self._task.cancelled():
            return asyncio.CancelledError()
        return self._task.exception()

    async def code(self) -> grpc.StatusCode:
        return status_of(await self._outcome())

    async def details(self) -> str:
        error = await self._outcome()
        if isinstance(error, grpc.aio.AioRpcError):
            return error.details() or ""
        return "" if error is None else repr(error)

    async def initial_metadata(self) -> Metadata:
        await self._outcome()
        call = self._inv.call
        return Metadata() if call is None else cast(Metadata, await call.initial_metadata())

    async def trailing_metadata(self) -> Metadata:
        error = await self._outcome()
        if isinstance(error, grpc.aio.AioRpcError):
            return cast(Metadata, error.trailing_metadata())
        call = self._inv.call
        return Metadata() if call is None else await call.trailing_metadata()

    async def wait_for_connection(self) -> None:
        await self._outcome()


class GovernedUnaryUnaryCall(_TaskCall, grpc.aio.UnaryUnaryCall[RequestT, ResponseT]):
    def __init__(self, invoker: Invoker, inv: Invocation) -> None:
        self._inv = inv
        self._task = asyncio.ensure_future(invoker(inv))

    def __await__(self) -> Generator[Any, None, ResponseT]:
        response: ResponseT = yield from self._task.__await__()
        return response


def _live_timeout(ctx: MethodContext, apply: Callable[[float], None]) -> None:
    """Keep `apply`ing the method's timeout: the `timeout` rule's, else the stub's."""

    def reload() -> None:
        rule = ctx.rules.method_rule(TimeoutRule, ctx.method_name)
        seconds = ctx.config.timeout
        if rule is not None and rule.timeout_ms is not None:
            seconds = rule.timeout_ms / 1000
        apply(seconds)

    reload()
    ctx.rules.on_change(TimeoutRule.KIND, reload)


class GovernedUnaryUnaryMultiCallable(grpc.aio.UnaryUnaryMultiCallable[RequestT, ResponseT]):
    def __init__(self, ctx: MethodContext, invoker: Invoker) -> None:
        self._ctx = ctx
        self._invoker = invoker
        self._timeout = ctx.config.timeout
        _live_timeout(ctx, self._set_timeout)

    def _set_timeout(self, seconds: float) -> None:
        self._timeout = seconds

    def __call__(
        self,
        request: RequestT,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> GovernedUnaryUnaryCall[RequestT, ResponseT]:
        _check_call_options(credentials, compression)
        ctx = self._ctx
        inv = Invocation(
            ctx.service,
            ctx.method,
            request,
            ctx.metadata(metadata),
            deadline_after(self._timeout if timeout is None else timeout),
            hash_key=ctx.hash_key(request) if ctx.hash_key is not None else None,
            wait_for_ready=wait_for_ready,
        )
        return GovernedUnaryUnaryCall(self._invoker, inv)


class _StreamCall(_TaskCall):
    """A streaming call: `self._task` picks a provider and opens the call there."""

    def __init__(self, opener: _StreamOpener, inv: Invocation, argument: Any) -> None:
        self._inv = inv
        self._task = asyncio.get_running_loop().create_task(opener.open(inv, argument))

    async def _call(self) -> Any:
        return await self._task

    def cancelled(self) -> bool:
        call = self._inv.call
        return bool(call.cancelled()) if call is not None else self._task.cancelled()

    def done(self) -> bool:
        call = self._inv.call
        return self._task.done() and (call is None or call.done())

    def cancel(self) -> bool:
        call = self._inv.call
        if call is not None:
            return bool(call.cancel())
        return self._task.cancel()

    def add_done_callback(self, callback: Callable[[Any], None]) -> None:
        def forward(task: asyncio.Task[Any]) -> None:
            if task.cancelled() or task.exception() is not None:
                callback(self)
            else:
                task.result().add_done_callback(lambda _: callback(self))

        self._task.add_done_callback(forward)

    async def code(self) -> grpc.StatusCode:
        error = await self._outcome()
        return await self._inv.call.code() if error is None else await super().code()

    async def details(self) -> str:
        error = await self._outcome()
        return await self._inv.call.details() if error is None else await super().details()

    async def initial_metadata(self) -> Metadata:
        try:
            call = await self._call()
        except grpc.aio.AioRpcError as error:
            return error.initial_metadata()
        return cast(Metadata, await call.initial_metadata())

    async def trailing_metadata(self) -> Metadata:
        try:
            call = await self._call()
        except grpc.aio.AioRpcError as error:
            return cast(Metadata, error.trailing_metadata())
        return cast(Metadata, await call.trailing_metadata())

    async def wait_for_connection(self) -> None:
        await (await self._call()).wait_for_connection()


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
        await (await self._call()).write(request)

    async def done_writing(self) -> None:
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


# Outcome recorders of finished streams, held so they are not collected mid-run.
_recorders: set[asyncio.Task[None]] = set()


class _StreamOpener:
    """Opens one method's streaming calls on providers chosen by its balancer."""

    def __init__(
        self,
        ctx: MethodContext,
        kind: str,
        serializer: Serializer,
        deserializer: Deserializer,
    ) -> None:
        self._ctx = ctx
        self._kind = kind
        self._serializer = serializer
        self._deserializer = deserializer
        # Streams go to the stub's own selection; route rules split unary calls only.
        self._ref = ctx.directory.pool(ctx.balancer, ctx.selector)
        self._timeout = ctx.config.timeout
        _live_timeout(ctx, self._set_timeout)

    def _set_timeout(self, seconds: float) -> None:
        self._timeout = seconds

    def invocation(
        self, argument: Any, timeout: float | None, metadata: Any, wait_for_ready: bool | None
    ) -> Invocation:
        ctx = self._ctx
        # Only a single request can be hashed; a request iterator cannot.
        hashable = ctx.hash_key is not None and self._kind == "unary_stream"
        return Invocation(
            ctx.service,
            ctx.method,
            argument,
            ctx.metadata(metadata),
            deadline_after(self._timeout if timeout is None else timeout),
            hash_key=ctx.hash_key(argument) if hashable and ctx.hash_key is not None else None,
            wait_for_ready=wait_for_ready,
        )

    async def open(self, inv: Invocation, argument: Any) -> Any:
        endpoint = await self._ctx.directory.pick(self._ref, inv)
        remaining = inv.deadline - time.monotonic()
        if remaining <= 0:
            raise _deadline_exceeded()
        multicallable = endpoint.callable(
            self._kind, self._ctx.method, self._serializer, self._deserializer
        )
        call = multicallable(
            argument, timeout=remaining, metadata=inv.metadata, wait_for_ready=inv.wait_for_ready
        )
        inv.endpoint = endpoint
        inv.call = call
        started = endpoint.begin()
        call.add_done_callback(lambda finished: self._finished(endpoint, started, finished))
        return call

    @staticmethod
    def _finished(endpoint: Endpoint, started: float, call: Any) -> None:
        async def record() -> None:
            endpoint.end(started, await call.code(), timed=False)

        # A finished call knows its code at once, but tells it only through a coroutine.
        task = asyncio.get_running_loop().create_task(record())
        _recorders.add(task)
        task.add_done_callback(_recorders.discard)


class _GovernedStreamMultiCallable:
    _call_class: type[_StreamCall]

    def __init__(self, opener: _StreamOpener) -> None:
        self._opener = opener

    def __call__(
        self,
        argument: Any = None,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> Any:
        _check_call_options(credentials, compression)
        inv = self._opener.invocation(argument, timeout, metadata, wait_for_ready)
        return self._call_class(self._opener, inv, argument)


class GovernedUnaryStreamMultiCallable(
    _GovernedStreamMultiCallable, grpc.aio.UnaryStreamMultiCallable[RequestT, ResponseT]
):
    _call_class = GovernedUnaryStreamCall


class GovernedStreamUnaryMultiCallable(
    _GovernedStreamMultiCallable, grpc.aio.StreamUnaryMultiCallable[RequestT, ResponseT]
):
    _call_class = GovernedStreamUnaryCall


class GovernedStreamStreamMultiCallable(
    _GovernedStreamMultiCallable, grpc.aio.StreamStreamMultiCallable[RequestT, ResponseT]
):
    _call_class = GovernedStreamStreamCall


class GovernedChannel(grpc.aio.Channel):
    """The channel under every CSF stub; one per `consumer.stub(...)` call.

    Provider connections live in the directories (one per service cluster), so closing
    this channel closes nothing the consumer shares.
    """

    def __init__(
        self,
        config: StubConfig,
        directory_for: Callable[[str], Directory],
        rules: ServiceRules,
        filters: tuple[FilterFactory, ...],
        telemetry: Telemetry = OFF,
        caller: CallerToken | None = None,
    ) -> None:
        self.config = config
        self._caller = caller
        self._directory_for = directory_for
        self._rules = rules
        self._telemetry = telemetry
        self._filters = filters
        self._multicallables: dict[tuple[str, str], Any] = {}

    def method_context(self, method: str) -> MethodContext:
        name = method.rsplit("/", 1)[-1]
        config = self.config.method(name)
        field = f"methods[{name!r}].lb" if name in self.config.methods else "lb"
        return MethodContext(
            service=self.config.service,
            method=method,
            config=config,
            directory=self._directory_for(config.cluster),
            rules=self._rules,
            balancer=balancer(config.lb, field=field),
            fallback=self.config.fallback_for(name),
            hash_key=self.config.hash_key,
            telemetry=self._telemetry,
            caller=self._caller,
        )

    def _cached(self, kind: str, method: str, build: Callable[[MethodContext], Any]) -> Any:
        found = self._multicallables.get((kind, method))
        if found is None:
            found = self._multicallables[kind, method] = build(self.method_context(method))
        return found

    def unary_unary(
        self,
        method: str,
        request_serializer: Serializer = None,
        response_deserializer: Deserializer = None,
        _registered_method: bool = False,
    ) -> GovernedUnaryUnaryMultiCallable[Any, Any]:
        def build(ctx: MethodContext) -> GovernedUnaryUnaryMultiCallable[Any, Any]:
            if response_deserializer is not None:
                deserialize = response_deserializer
                ctx = dataclasses.replace(ctx, empty_response=lambda: deserialize(b""))
            terminal = _UnaryTerminal(method, request_serializer, response_deserializer)
            invoker = compose(build_filters(ctx, self._filters), terminal)
            return GovernedUnaryUnaryMultiCallable(ctx, invoker)

        found: GovernedUnaryUnaryMultiCallable[Any, Any] = self._cached(
            "unary_unary", method, build
        )
        return found

    def _stream(
        self,
        kind: str,
        cls: type[_GovernedStreamMultiCallable],
        method: str,
        serializer: Serializer,
        deserializer: Deserializer,
    ) -> Any:
        return self._cached(
            kind, method, lambda ctx: cls(_StreamOpener(ctx, kind, serializer, deserializer))
        )

    def unary_stream(
        self,
        method: str,
        request_serializer: Serializer = None,
        response_deserializer: Deserializer = None,
        _registered_method: bool = False,
    ) -> GovernedUnaryStreamMultiCallable[Any, Any]:
        found: GovernedUnaryStreamMultiCallable[Any, Any] = self._stream(
            "unary_stream",
            GovernedUnaryStreamMultiCallable,
            method,
            request_serializer,
            response_deserializer,
        )
        return found

    def stream_unary(
        self,
        method: str,
        request_serializer: Serializer = None,
        response_deserializer: Deserializer = None,
        _registered_method: bool = False,
    ) -> GovernedStreamUnaryMultiCallable[Any, Any]:
        found: GovernedStreamUnaryMultiCallable[Any, Any] = self._stream(
            "stream_unary",
            GovernedStreamUnaryMultiCallable,
            method,
            request_serializer,
            response_deserializer,
        )
        return found

    def stream_stream(
        self,
        method: str,
        request_serializer: Serializer = None,
        response_deserializer: Deserializer = None,
        _registered_method: bool = False,
    ) -> GovernedStreamStreamMultiCallable[Any, Any]:
        found: GovernedStreamStreamMultiCallable[Any, Any] = self._stream(
            "stream_stream",
            GovernedStreamStreamMultiCallable,
            method,
            request_serializer,
            response_deserializer,
        )
        return found

    # -- the rest of grpc.aio.Channel ---------------------------------------------------

    async def __aenter__(self) -> GovernedChannel:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self, grace: float | None = None) -> None:
        """Nothing to release: provider channels belong to the consumer's directories."""

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        """READY when some provider's channel is ready, else the best state among them."""
        directory = self._directory_for(self.config.cluster)
        states = {ep.channel.get_state(try_to_connect) for ep in directory.endpoints.values()}
        for state in (
            grpc.ChannelConnectivity.READY,
            grpc.ChannelConnectivity.CONNECTING,
            grpc.ChannelConnectivity.IDLE,
            grpc.ChannelConnectivity.TRANSIENT_FAILURE,
        ):
            if state in states:
                return state
        return grpc.ChannelConnectivity.IDLE

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        """Return once the merged state differs from `last_observed_state`."""
        directory = self._directory_for(self.config.cluster)
        while self.get_state() == last_observed_state:
            channels = [endpoint.channel for endpoint in directory.endpoints.values()]
            waits = [
                asyncio.ensure_future(channel.wait_for_state_change(channel.get_state()))
                for channel in channels
            ]
            if not waits:  # no provider yet: nothing to watch but the clock
                await asyncio.sleep(STATE_RECHECK)
                continue
            # Providers also come and go: look again at least every STATE_RECHECK seconds.
            await asyncio.wait(waits, timeout=STATE_RECHECK, return_when=asyncio.FIRST_COMPLETED)
            for wait in waits:
                wait.cancel()

    async def channel_ready(self) -> None:
        """Wait until the provider list is known and one provider's channel is ready."""
        directory = self._directory_for(self.config.cluster)
        await directory.wait_listed()
        while self.get_state(try_to_connect=True) != grpc.ChannelConnectivity.READY:
            await self.wait_for_state_change(grpc.ChannelConnectivity.READY)
