"""The consumer filter chain: a named order of filter factories, built once per method.

`DEFAULT_CONSUMER_CHAIN` lists filter names outermost first. A consumer can pass its own
order (`chain=`) and its own factories by name (`filters=`), replacing a built-in one or
adding a new one; each factory is called once per stub method with that method's
`MethodContext` and returns the Filter to use, or None to leave that method without it.
`ctx.streaming` tells a factory it builds for a stream: there `next` opens the stream and
returns the provider call, and `inv.on_end(hook)` hears how the stream ended. Built-in
filters left out of streams: retry and attempt_tracing; fallback only refuses degraded ones.

A `MethodChain` composes a method's filters, leaving out those not `in_force` (a limit
with no rule, retries a stub cannot make), and composes them again when the service's
rules change, as Finagle's Stack is built from its configuration: a call pays only for
the filters that have work to do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from csf._exceptions import ConfigError
from csf._invocation import Filter, Invoker, LiveRules, MethodContext, compose
from csf._named import resolve_named
from csf.lb import LoadBalanceFilter
from csf.observability.metrics import ClientMetricsFilter
from csf.observability.tracing import (
    AttemptTracingFilter,
    ClientTracingFilter,
    StreamTracingFilter,
)
from csf.resilience.circuit import BreakerFilter
from csf.resilience.concurrency import ConcurrencyFilter
from csf.resilience.fallback import FallbackFilter
from csf.resilience.ratelimit import RateLimitFilter
from csf.resilience.retry import retry_filter
from csf.router import RouterFilter
from csf.set_router import SetFilter

FilterFactory = Callable[[MethodContext], Filter | None]


def _load_balance(ctx: MethodContext) -> Filter:
    ref = ctx.directory.pool(ctx.balancer, ctx.selector)
    return LoadBalanceFilter(ctx.directory, ref, ctx.lifecycle)


def _tracing(ctx: MethodContext) -> Filter | None:
    tracer = ctx.telemetry.tracer
    if tracer is None:
        return None
    return StreamTracingFilter(ctx, tracer) if ctx.streaming else ClientTracingFilter(ctx, tracer)


def _attempt_tracing(ctx: MethodContext) -> Filter | None:
    tracer = ctx.telemetry.tracer  # a stream's own span carries its provider
    return AttemptTracingFilter(ctx, tracer) if tracer and not ctx.streaming else None


def _metrics(ctx: MethodContext) -> Filter | None:
    instruments = ctx.telemetry.instruments
    return ClientMetricsFilter(ctx, instruments) if instruments is not None else None


# With tracing or metrics off, their filters are left out of the chain altogether.
DEFAULT_CONSUMER_CHAIN: tuple[str, ...] = (
    "tracing",
    "metrics",
    "fallback",
    "breaker",
    "retry",
    "rate_limit",
    "concurrency",
    "router",
    "set",
    "load_balance",
    "attempt_tracing",
)
BUILTIN_CONSUMER_FILTERS: Mapping[str, FilterFactory] = {
    "tracing": _tracing,
    "metrics": _metrics,
    "attempt_tracing": _attempt_tracing,
    "fallback": FallbackFilter,
    "breaker": BreakerFilter,
    "retry": retry_filter,
    "rate_limit": RateLimitFilter,
    "concurrency": ConcurrencyFilter,
    "router": RouterFilter,
    "set": SetFilter,
    "load_balance": _load_balance,
}


def resolve_chain(
    chain: Sequence[str], filters: Mapping[str, FilterFactory] | None
) -> tuple[FilterFactory, ...]:
    """The factories for `chain`, user-given ones first; ConfigError for an unknown or
    repeated name, or a chain without load_balance."""
    factories = resolve_named(chain, BUILTIN_CONSUMER_FILTERS, filters, "filter")
    if "load_balance" not in chain:
        raise ConfigError("chain: must include 'load_balance', which chooses each call's provider")
    return factories


def build_filters(ctx: MethodContext, factories: Sequence[FilterFactory]) -> list[Filter]:
    filters = (factory(ctx) for factory in factories)
    return [filter_ for filter_ in filters if filter_ is not None]


class MethodChain:
    """One method's filters around its terminal, composed of those in force."""

    __slots__ = ("_filters", "_generation", "_invoker", "_rules", "_terminal")

    def __init__(self, filters: Sequence[Filter], terminal: Invoker, rules: LiveRules) -> None:
        self._filters = tuple(filters)
        self._terminal = terminal
        self._rules = rules
        self._generation = -1
        self._invoker = terminal

    @property
    def invoker(self) -> Invoker:
        """The chain as the rules stand now."""
        generation = self._rules.generation
        if generation != self._generation:
            self._generation = generation
            in_force = [f for f in self._filters if getattr(f, "in_force", True)]
            self._invoker = compose(in_force, self._terminal)
        return self._invoker
