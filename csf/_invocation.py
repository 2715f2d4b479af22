"""One call as it passes through the consumer filter chain, and how chains are built.

An `Invoker` is `async (Invocation) -> response`; a `Filter` is
`async (Invocation, next) -> response`. `compose` folds filters around a terminal
invoker once per method, so a call pays for no assembly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from csf.directory import PickerRef
    from csf.endpoint import Endpoint

Metadata = Sequence[tuple[str, str | bytes]]
Invoker = Callable[["Invocation"], Awaitable[Any]]


@dataclass(slots=True, eq=False)
class Invocation:
    """The mutable state of one logical call, shared by every filter it passes."""

    service: str
    """The CSF microservice code, e.g. 'XIESR'."""
    method: str
    """The gRPC method path, e.g. '/demo.Greeter/SayHello'."""
    request: Any
    metadata: Metadata | None
    deadline: float
    """time.monotonic() at which the call must be over."""
    attempt: int = 0
    tried: set[str] = field(default_factory=set)
    """host:port of the providers already tried by this call."""
    hash_key: str | None = None
    pool: PickerRef | None = None
    """The providers this call may go to (set by the router); None: the balancer's default."""
    endpoint: Endpoint | None = None
    """The provider chosen for the current attempt (set by load balancing)."""
    attempt_deadline: float | None = None
    """When the current attempt must end (retries split the deadline); None: `deadline`."""
    wait_for_ready: bool | None = None
    call: Any = None
    """The provider call of the current attempt, for its metadata and status."""
    fallback_used: bool = False
    failure: BaseException | None = None
    """The error a fallback answered for."""
    breaker_state: str | None = None


class Filter(Protocol):
    """One step of the consumer chain: work around `await next(inv)`, or answer without
    calling it. Built once per method by a FilterFactory (see DEFAULT_CONSUMER_CHAIN)."""

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
