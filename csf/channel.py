"""GovernedChannel: a `grpc.aio.Channel` whose calls go to providers CSF chooses.

The generated stub asks the channel once per method for a multicallable; that is when
CSF resolves the method's settings and composes its filter chain, for every call kind.
A call runs its chain in a task behind a call object with grpc.aio's interface: a unary
chain ends in the chosen endpoint's unary call and returns the response; a stream's
chain ends by opening the stream there and returns that call, which the call object
then forwards to, and whose end runs the filters' end hooks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

import grpc

from csf._calls import (
    GovernedStreamStreamCall,
    GovernedStreamUnaryCall,
    GovernedUnaryStreamCall,
    GovernedUnaryUnaryCall,
    TaskCall,
)
from csf._chain import FilterFactory, MethodChain, build_filters
from csf._exceptions import ConfigError
from csf._invocation import (
    STREAM_KINDS,
    Invocation,
    LifecycleGate,
    MethodContext,
    MethodState,
)
from csf.auth import CallerToken
from csf.config import StubConfig
from csf.directory import Directory
from csf.endpoint import Deserializer, Serializer
from csf.lb import balancer
from csf.observability import OFF, Telemetry
from csf.resilience.deadline import deadline_after, deadline_exceeded
from csf.rules import TimeoutRule
from csf.set_key import inherited, sent_with

RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")
# How often GovernedChannel.wait_for_state_change looks again at a changed provider set.
STATE_RECHECK = 0.5


def _check_call_options(credentials: object, compression: object) -> None:
    if credentials is not None:
        raise ConfigError("credentials: per-call credentials are not supported by CSF stubs")
    if compression is not None:
        raise ConfigError("compression: per-call compression is not supported by CSF stubs")


class TimeoutState:
    """The `timeout` rule's value for one method (None: no rule), kept current."""

    __slots__ = ("_state", "seconds")

    def __init__(self, state: MethodState) -> None:
        self._state = state
        self._reload()
        state.watch(TimeoutRule.KIND, self._reload)

    def _reload(self) -> None:
        rule = self._state.rules.method_rule(TimeoutRule, self._state.method_name)
        self.seconds = rule.timeout_ms / 1000 if rule and rule.timeout_ms is not None else None


class _Terminal:
    """The end of a chain: the call on the chosen endpoint's own channel. A unary
    terminal returns the response; a stream's returns the open call, and runs the
    invocation's end hooks when the stream is over."""

    __slots__ = ("_deserializer", "_kind", "_method", "_serializer")

    def __init__(
        self, kind: str, method: str, serializer: Serializer, deserializer: Deserializer
    ) -> None:
        self._kind = kind
        self._method = method
        self._serializer = serializer
        self._deserializer = deserializer

    def __call__(self, inv: Invocation) -> Any:
        remaining = (inv.attempt_deadline or inv.deadline) - time.monotonic()
        if remaining <= 0:
            raise deadline_exceeded()
        assert inv.endpoint is not None, "load_balance must run before the endpoint"
        multicallable = inv.endpoint.callable(
            self._kind, self._method, self._serializer, self._deserializer
        )
        set_key = inv.set_key or inv.inherited_set_key
        metadata = inv.metadata if set_key is None else sent_with(inv.metadata, set_key)
        call = multicallable(
            inv.request,
            timeout=remaining,
            metadata=metadata,
            wait_for_ready=inv.wait_for_ready,
        )
        inv.call = call
        if inv.call_waiter is not None and not inv.call_waiter.done():
            inv.call_waiter.set_result(None)
        if inv.streaming:
            call.add_done_callback(lambda finished: _report_end(inv, finished))
            return _opened(call)
        return call


async def _opened(call: Any) -> Any:
    return call


# Stream end reports in flight, held so they are not collected mid-run.
_reports: set[asyncio.Task[None]] = set()


def _report_end(inv: Invocation, call: Any) -> None:
    async def report() -> None:
        inv.ended(await call.code())

    # A finished call knows its code at once, but tells it only through a coroutine.
    task = asyncio.get_running_loop().create_task(report())
    _reports.add(task)
    task.add_done_callback(_reports.discard)


class _GovernedMultiCallable:
    """One method of the stub: its chain, composed once, and how its calls start."""

    _call_class: type[TaskCall]

    def __init__(self, ctx: MethodContext, chain: MethodChain) -> None:
        self._ctx = ctx
        self._chain = chain
        self._rules = ctx.rules
        # Until the rules were read once, calls start by waiting for them.
        self._waiting_for_rules = True
        self._timeout = ctx.state.of(TimeoutState)
        # A client stream's requests cannot be hashed: only a single request can.
        self._hash_key = ctx.hash_key if ctx.kind in ("unary_unary", "unary_stream") else None

    def __call__(
        self,
        request: Any = None,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> Any:
        _check_call_options(credentials, compression)
        ctx = self._ctx
        given = timeout is not None
        if timeout is None:
            timeout = self._timeout.seconds or ctx.config.timeout
        inv = Invocation(
            ctx.service,
            ctx.method,
            request,
            ctx.metadata(metadata),
            deadline_after(timeout),
            hash_key=self._key(request) if self._hash_key is not None else None,
            inherited_set_key=inherited(),
            wait_for_ready=wait_for_ready,
            streaming=ctx.streaming,
        )
        entry = self._chain.invoker
        if self._waiting_for_rules:
            started = None if given else time.monotonic()
            entry = functools.partial(self._after_first_rules, started=started)
        return self._call_class(entry, inv)

    async def _after_first_rules(self, inv: Invocation, started: float | None) -> Any:
        """A new consumer's first calls obey the rules already in the registry: a call
        given no timeout of its own (`started` says when it began) takes the deadline
        of a `timeout` rule read meanwhile."""
        await self._rules.settle(inv.deadline - time.monotonic())
        if self._rules.ready:
            self._waiting_for_rules = False
        ruled = self._timeout.seconds
        if started is not None and ruled is not None:
            inv.deadline = deadline_after(ruled - (time.monotonic() - started))
        return await self._chain.invoker(inv)

    def _key(self, request: Any) -> str:
        assert self._hash_key is not None
        try:
            return self._hash_key(request)
        except Exception as exc:
            name = self._ctx.method_name
            raise ConfigError(
                f"hash_key failed for {name}: {type(exc).__name__}: {exc}; give methods "
                f"their own with methods={{{name!r}: csf.MethodConfig(hash_key=...)}}"
            ) from exc


class GovernedUnaryUnaryMultiCallable(
    _GovernedMultiCallable, grpc.aio.UnaryUnaryMultiCallable[RequestT, ResponseT]
):
    _call_class = GovernedUnaryUnaryCall


class GovernedUnaryStreamMultiCallable(
    _GovernedMultiCallable, grpc.aio.UnaryStreamMultiCallable[RequestT, ResponseT]
):
    _call_class = GovernedUnaryStreamCall


class GovernedStreamUnaryMultiCallable(
    _GovernedMultiCallable, grpc.aio.StreamUnaryMultiCallable[RequestT, ResponseT]
):
    _call_class = GovernedStreamUnaryCall


class GovernedStreamStreamMultiCallable(
    _GovernedMultiCallable, grpc.aio.StreamStreamMultiCallable[RequestT, ResponseT]
):
    _call_class = GovernedStreamStreamCall


_MULTICALLABLES: dict[str, type[_GovernedMultiCallable]] = {
    "unary_unary": GovernedUnaryUnaryMultiCallable,
    "unary_stream": GovernedUnaryStreamMultiCallable,
    "stream_unary": GovernedStreamUnaryMultiCallable,
    "stream_stream": GovernedStreamStreamMultiCallable,
}


class GovernedChannel(grpc.aio.Channel):
    """The channel under every CSF stub; one per `consumer.stub(...)` call.

    Provider connections live in the directories (one per service cluster) and
    governance state in the Consumer (one per method), so closing this channel closes
    nothing the consumer shares, and a channel leaves no rule listener behind.
    """

    def __init__(
        self,
        config: StubConfig,
        directory_for: Callable[[str], Directory],
        state_for: Callable[[str, str], MethodState],
        lifecycle_for: Callable[[str], LifecycleGate],
        filters: tuple[FilterFactory, ...],
        telemetry: Telemetry = OFF,
        caller: CallerToken | None = None,
        home_set: str | None = None,
    ) -> None:
        self.config = config
        self._caller = caller
        self._home_set = home_set
        self._directory_for = directory_for
        self._state_for = state_for
        self._lifecycle_for = lifecycle_for
        self._telemetry = telemetry
        self._filters = filters
        self._multicallables: dict[tuple[str, str], Any] = {}

    def method_context(self, method: str, kind: str = "unary_unary") -> MethodContext:
        name = method.rsplit("/", 1)[-1]
        config = self.config.method(name)
        field = f"methods[{name!r}].lb" if name in self.config.methods else "lb"
        state = self._state_for(method, config.cluster)
        return MethodContext(
            service=self.config.service,
            method=method,
            kind=kind,
            config=config,
            directory=self._directory_for(config.cluster),
            rules=state.rules,
            state=state,
            balancer=balancer(config.lb, field=field),
            fallback=None if kind in STREAM_KINDS else self.config.fallback_for(name),
            hash_key=self.config.hash_key_for(name),
            telemetry=self._telemetry,
            caller=self._caller,
            lifecycle=self._lifecycle_for(method.lstrip("/").rpartition("/")[0]),
            home_set=self._home_set,
            set_key=self.config.set_key,
        )

    def check_methods(self) -> None:
        """ConfigError for settings naming a method this channel's stub does not have."""
        unary = {
            m.rsplit("/", 1)[-1] for kind, m in self._multicallables if kind not in STREAM_KINDS
        }
        streaming = {
            m.rsplit("/", 1)[-1] for kind, m in self._multicallables if kind in STREAM_KINDS
        }
        self.config.check_methods(unary, streaming)

    def _multicallable(
        self, kind: str, method: str, serializer: Serializer, deserializer: Deserializer
    ) -> Any:
        found = self._multicallables.get((kind, method))
        if found is None:
            ctx = self.method_context(method, kind)
            if deserializer is not None and kind == "unary_unary":
                deserialize = deserializer
                ctx = dataclasses.replace(ctx, empty_response=lambda: deserialize(b""))
            terminal = _Terminal(kind, method, serializer, deserializer)
            chain = MethodChain(build_filters(ctx, self._filters), terminal, ctx.rules)
            found = _MULTICALLABLES[kind](ctx, chain)
            self._multicallables[kind, method] = found
        return found

    def unary_unary(
        self,
        method: str,
        request_serializer: Serializer = None,
        response_deserializer: Deserializer = None,
        _registered_method: bool = False,
    ) -> GovernedUnaryUnaryMultiCallable[Any, Any]:
        found: GovernedUnaryUnaryMultiCallable[Any, Any] = self._multicallable(
            "unary_unary", method, request_serializer, response_deserializer
        )
        return found

    def unary_stream(
        self,
        method: str,
        request_serializer: Serializer = None,
        response_deserializer: Deserializer = None,
        _registered_method: bool = False,
    ) -> GovernedUnaryStreamMultiCallable[Any, Any]:
        found: GovernedUnaryStreamMultiCallable[Any, Any] = self._multicallable(
            "unary_stream", method, request_serializer, response_deserializer
        )
        return found

    def stream_unary(
        self,
        method: str,
        request_serializer: Serializer = None,
        response_deserializer: Deserializer = None,
        _registered_method: bool = False,
    ) -> GovernedStreamUnaryMultiCallable[Any, Any]:
        found: GovernedStreamUnaryMultiCallable[Any, Any] = self._multicallable(
            "stream_unary", method, request_serializer, response_deserializer
        )
        return found

    def stream_stream(
        self,
        method: str,
        request_serializer: Serializer = None,
        response_deserializer: Deserializer = None,
        _registered_method: bool = False,
    ) -> GovernedStreamStreamMultiCallable[Any, Any]:
        found: GovernedStreamStreamMultiCallable[Any, Any] = self._multicallable(
            "stream_stream", method, request_serializer, response_deserializer
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
        """Nothing to release: provider channels and governance state are the consumer's."""

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
