"""The contract of the consumer core: one call, the filters it passes, what they may use.

An `Invoker` is `async (Invocation) -> result`; a `Filter` is `async (Invocation, next)
-> result`. `compose` folds filters around a terminal invoker once per method, so a call
pays for no assembly. A unary call's result is the response; a stream's is the open
provider call, and a filter that must know how a stream ended hands `inv.on_end` a hook.

This module imports no filter: filters, the directory and the chain table import it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import grpc

from csf.auth import CallerToken
from csf.config import Fallback, HashKey, MethodSettings
from csf.endpoint import Endpoint
from csf.observability import Telemetry
from csf.registry.instance import Instance

logger = logging.getLogger("csf.chain")

Metadata = Sequence[tuple[str, str | bytes]]
Invoker = Callable[["Invocation"], Awaitable[Any]]
EndHook = Callable[[grpc.StatusCode], None]
"""Told the status a call ended with."""
Clock = Callable[[], float]

STREAM_KINDS = frozenset({"unary_stream", "stream_unary", "stream_stream"})


@dataclass(slots=True, eq=False)
class Invocation:
    """The mutable state of one logical call, shared by every filter it passes."""

    service: str
    """The CSF microservice code, e.g. 'XIESR'."""
    method: str
    """The gRPC method path, e.g. '/demo.Greeter/SayHello'."""
    request: Any
    """The request (a request iterator or None for client streams)."""
    metadata: Metadata | None
    deadline: float
    """time.monotonic() at which the call must be over."""
    attempt: int = 0
    tried: set[str] = field(default_factory=set)
    """host:port of the providers already tried by this call."""
    hash_key: str | None = None
    inherited_set_key: str | None = None
    """The SET key of the call the current handler serves, if any."""
    set_key: str | None = None
    """The SET key the set filter resolved; sent on in csf-set-key (else the inherited one)."""
    set_name: str | None = None
    """The SET the call went to (set by the set filter)."""
    pool: PickerRef | None = None
    """The providers this call may go to (set by the router); None: the balancer's default."""
    endpoint: Endpoint | None = None
    """The provider chosen for the current attempt (set by load balancing)."""
    attempt_deadline: float | None = None
    """When the current attempt must end (retries split the deadline); None: `deadline`."""
    wait_for_ready: bool | None = None
    call: Any = None
    """The provider call of the current attempt, for its metadata and status."""
    call_waiter: asyncio.Future[None] | None = None
    """Set when `call` is; made only when someone waits for it."""
    fallback_used: bool = False
    failure: BaseException | None = None
    """The error a fallback answered for."""
    breaker_state: str | None = None
    streaming: bool = False
    """A stream: `next` opens it and returns the provider's call; it ends later."""
    end_hooks: list[EndHook] | None = None
    """A stream's hooks waiting for its end."""
    end_code: grpc.StatusCode | None = None
    """How the stream ended, once it has."""

    def on_end(self, hook: EndHook) -> None:
        """Run `hook(code)` when the call is over; call it once `next` returned. A unary
        call is over then (OK); a stream when it ends, or at once if it already has."""
        if not self.streaming:
            self._run(hook, grpc.StatusCode.OK)
        elif self.end_code is not None:
            self._run(hook, self.end_code)
        elif self.end_hooks is None:
            self.end_hooks = [hook]
        else:
            self.end_hooks.append(hook)

    def ended(self, code: grpc.StatusCode) -> None:
        """The stream ended with `code`: run its hooks (innermost filter's first), once."""
        if self.end_code is not None:  # reported already
            return
        self.end_code = code
        hooks, self.end_hooks = self.end_hooks or [], None
        for hook in hooks:
            self._run(hook, code)

    def _run(self, hook: EndHook, code: grpc.StatusCode) -> None:
        try:
            hook(code)
        except Exception:  # one filter's bookkeeping must not skip the others'
            logger.exception("%s: a call's end hook failed", self.method)


class Filter(Protocol):
    """One step of the consumer chain: work around `await next(inv)`, or answer without
    calling it. Built once per method by a FilterFactory (see csf._chain).

    A filter may also have `in_force: bool` (an attribute or a property): while it is
    False the filter has nothing to do, and the method's chain leaves it out. It is read
    again whenever the service's rules change (`LiveRules.generation`), so it must
    depend on the rules and the stub's settings only."""

    async def __call__(self, inv: Invocation, next: Invoker, /) -> Any: ...


class _Link:
    """`filter` bound to the invoker after it; returns the filter's coroutine unwrapped."""

    __slots__ = ("_filter", "_next")

    def __init__(self, filter_: Filter, next_: Invoker) -> None:
        self._filter = filter_
        self._next = next_

    def __call__(self, inv: Invocation) -> Awaitable[Any]:
        return self._filter(inv, self._next)


def compose(filters: Sequence[Filter], terminal: Invoker) -> Invoker:
    """Wrap `terminal` in `filters`, the first filter outermost."""
    invoker = terminal
    for filter_ in reversed(filters):
        invoker = _Link(filter_, invoker)
    return invoker


# -- what filters choose providers with ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Selector:
    """Which providers a pool admits: a group, a version and tags they must carry."""

    group: str | None = None
    version: str | None = None
    tags: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    set: str | None = None
    """The SET the providers belong to (the set filter's pools); None: any or none."""

    @classmethod
    def of(cls, group: str | None, version: str | None, tags: Mapping[str, str] | None) -> Selector:
        return cls(group, version, frozenset((tags or {}).items()))

    def matches(self, instance: Instance) -> bool:
        return (
            (self.group is None or instance.group == self.group)
            and (self.version is None or instance.version == self.version)
            and all(instance.tags.get(key) == value for key, value in self.tags)
            and (self.set is None or instance.set == self.set)
        )

    def __str__(self) -> str:
        parts = [f"group={self.group!r}"] if self.group is not None else []
        if self.version is not None:
            parts.append(f"version={self.version!r}")
        parts.extend(f"tag {key}={value!r}" for key, value in sorted(self.tags))
        if self.set is not None:
            parts.append(f"SET {self.set}")
        return ", ".join(parts) or "any provider"


ANY_PROVIDER = Selector()


class Picker(Protocol):
    """Chooses the endpoint for one attempt; built once per snapshot, read on every call.
    The balancers (csf.lb) are its implementations."""

    endpoints: tuple[Endpoint, ...]
    """The endpoints it chooses among: those of weight above 0, else all of them."""

    def pick(self, inv: Invocation) -> Endpoint | None:
        """An endpoint, preferring usable ones not in `inv.tried`; None only if none exist."""

    def close(self) -> None:
        """Stop watching the endpoints (the directory replaced this picker)."""


BalancerFactory = Callable[[Sequence[Endpoint]], Picker]


class PickerRef:
    """The current picker of one pool (balancer and selector); swapped whole on change."""

    __slots__ = ("picker", "selector")

    def __init__(self, selector: Selector = ANY_PROVIDER) -> None:
        self.selector = selector
        self.picker: Picker | None = None


class ProviderPools(Protocol):
    """The live providers of one service cluster (csf.directory.Directory)."""

    @property
    def key(self) -> Any: ...

    @property
    def listed(self) -> bool:
        """A first provider list (from the registry or a snapshot) is in."""

    async def wait_listed(self) -> None:
        """Return once a first provider list is in."""

    def pool(self, factory: BalancerFactory, selector: Selector = ANY_PROVIDER) -> PickerRef:
        """The picker over the providers `selector` admits, kept current from now on."""

    async def pick(self, ref: PickerRef, inv: Invocation) -> Endpoint:
        """An endpoint of `ref`, waiting for the first listing; NoProviderError saying why not."""


# -- the rules and the state filters read --------------------------------------------

RuleT = TypeVar("RuleT")


class LiveRules(Protocol):
    """The live governance rules of one service (csf.rule_set.ServiceRules)."""

    def get(self, kind: type[RuleT]) -> RuleT | None: ...

    def method_rule(self, kind: type[RuleT], method: str) -> RuleT | None: ...

    def version(self, kind: str) -> int:
        """How many times rule `kind` changed: a cheap test of whether to rebuild."""

    @property
    def generation(self) -> int:
        """How many times any rule of the service changed."""

    def on_change(self, kind: str, listener: Callable[[], None]) -> Callable[[], None]:
        """Call `listener` on every change of `kind`; returns what stops that."""

    @property
    def ready(self) -> bool:
        """Every kind was read once (or waiting for that was given up)."""

    async def settle(self, within: float) -> None:
        """Wait up to `within` seconds for every kind's first reading."""


StateT = TypeVar("StateT")


class MethodState:
    """The governance state of one (service, cluster, method) in one Consumer.

    Breakers, token buckets, semaphores and retry budgets live here, made on first use
    by `of(kind)` and shared by every stub of the method; filters are thin views of it.
    Rule listeners the state registers with `watch` are removed by `close`.
    """

    def __init__(
        self,
        service: str,
        method: str,
        rules: LiveRules,
        telemetry: Telemetry,
        clock: Clock = time.monotonic,
    ) -> None:
        self.service = service
        self.method = method
        self.method_name = method.rsplit("/", 1)[-1]
        self.rules = rules
        self.telemetry = telemetry
        self.clock = clock
        self._parts: dict[Callable[[MethodState], Any], Any] = {}
        self._unwatch: list[Callable[[], None]] = []

    def of(self, kind: Callable[[MethodState], StateT]) -> StateT:
        """The method's one `kind(self)`, made on first use."""
        found: StateT | None = self._parts.get(kind)
        if found is None:
            found = self._parts[kind] = kind(self)
        return found

    def watch(self, kind: str, listener: Callable[[], None]) -> None:
        """Call `listener` on every change of rule `kind` until this state is closed."""
        self._unwatch.append(self.rules.on_change(kind, listener))

    def until_closed(self, stop: Callable[[], None]) -> None:
        """Call `stop` when this state is closed (a gauge's unwatch, say)."""
        self._unwatch.append(stop)

    def close(self) -> None:
        for unwatch in self._unwatch:
            unwatch()
        self._unwatch.clear()


class LifecycleGate(Protocol):
    """Whether the method's gRPC service takes calls now (csf.lifecycle)."""

    serving: bool

    @property
    def refusal(self) -> str:
        """Why it takes none."""


@dataclass(frozen=True, slots=True)
class MethodContext:
    """What a filter factory knows about the one method it builds a filter for."""

    service: str
    method: str
    """The gRPC method path, '/package.Service/Method'."""
    kind: str
    """The call kind: 'unary_unary', 'unary_stream', 'stream_unary' or 'stream_stream'."""
    config: MethodSettings
    directory: ProviderPools
    rules: LiveRules
    state: MethodState
    balancer: BalancerFactory
    fallback: Fallback | None
    hash_key: HashKey | None
    telemetry: Telemetry
    empty_response: Callable[[], Any] | None = None
    """The method's response message with no fields set (unary methods only)."""
    caller: CallerToken | None = None
    """The consumer app's name and token, sent with every call."""
    lifecycle: LifecycleGate | None = None
    """The lifecycle of the method's gRPC service; None: always serving."""
    home_set: str | None = None
    """The consumer's own SET (`Consumer(set=)`): where a SET-ized call with no key goes."""
    set_key: HashKey | None = None
    """The stub's `set_key`: a SET-ized call's key from its request."""

    def metadata(self, given: Any) -> Any:
        """The call's metadata: the caller's, then what the call was given."""
        if self.caller is None:
            return given
        own = self.caller.metadata()
        return own if not given else (*own, *given)

    @property
    def streaming(self) -> bool:
        return self.kind in STREAM_KINDS

    @property
    def method_name(self) -> str:
        return self.method.rsplit("/", 1)[-1]

    @property
    def selector(self) -> Selector:
        """The providers the stub itself admits (its group, version and tags)."""
        return Selector.of(self.config.group, self.config.version, self.config.tags)
