"""The consumer filter chain: a named order of filter factories, built once per method.

`DEFAULT_CONSUMER_CHAIN` lists filter names outermost first. A consumer can pass its own
order (`chain=`) and its own factories by name (`filters=`), replacing a built-in one or
adding a new one; each factory is called once per stub method with that method's
`MethodContext` and returns the Filter to use, or None to leave that method without it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from csf._exceptions import ConfigError
from csf._invocation import Filter
from csf.auth import CallerToken
from csf.config import Fallback, HashKey, MethodSettings
from csf.directory import Directory, Selector
from csf.lb import BalancerFactory, LoadBalanceFilter
from csf.observability import Telemetry
from csf.observability.metrics import ClientMetricsFilter
from csf.observability.tracing import AttemptTracingFilter, ClientTracingFilter
from csf.resilience.circuit import BreakerFilter
from csf.resilience.concurrency import ConcurrencyFilter
from csf.resilience.fallback import FallbackFilter
from csf.resilience.ratelimit import RateLimitFilter
from csf.resilience.retry import RetryFilter
from csf.router import RouterFilter
from csf.rule_set import ServiceRules


@dataclass(frozen=True, slots=True)
class MethodContext:
    """What a filter factory knows about the one method it builds a filter for."""

    service: str
    method: str
    """The gRPC method path, '/package.Service/Method'."""
    config: MethodSettings
    directory: Directory
    rules: ServiceRules
    balancer: BalancerFactory
    fallback: Fallback | None
    hash_key: HashKey | None
    telemetry: Telemetry
    empty_response: Callable[[], Any] | None = None
    """The method's response message with no fields set (unary methods only)."""
    caller: CallerToken | None = None
    """The consumer app's name and token, sent with every call."""

    def metadata(self, given: Any) -> Any:
        """The call's metadata: the caller's, then what the call was given."""
        if self.caller is None:
            return given
        own = self.caller.metadata()
        return own if not given else (*own, *given)

    @property
    def method_name(self) -> str:
        return self.method.rsplit("/", 1)[-1]

    @property
    def selector(self) -> Selector:
        """The providers the stub itself admits (its group, version and tags)."""
        return Selector.of(self.config.group, self.config.version, self.config.tags)


FilterFactory = Callable[[MethodContext], Filter | None]


def _load_balance(ctx: MethodContext) -> Filter:
    return LoadBalanceFilter(ctx.directory, ctx.directory.pool(ctx.balancer, ctx.selector))


def _tracing(ctx: MethodContext) -> Filter | None:
    tracer = ctx.telemetry.tracer
    return ClientTracingFilter(ctx, tracer) if tracer is not None else None


def _attempt_tracing(ctx: MethodContext) -> Filter | None:
    tracer = ctx.telemetry.tracer
    return AttemptTracingFilter(ctx, tracer) if tracer is not None else None


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
    "load_balance",
    "attempt_tracing",
)
BUILTIN_CONSUMER_FILTERS: Mapping[str, FilterFactory] = {
    "tracing": _tracing,
    "metrics": _metrics,
    "attempt_tracing": _attempt_tracing,
    "fallback": FallbackFilter,
    "breaker": BreakerFilter,
    "retry": RetryFilter,
    "rate_limit": RateLimitFilter,
    "concurrency": ConcurrencyFilter,
    "router": RouterFilter,
    "load_balance": _load_balance,
}


def resolve_chain(
    chain: Sequence[str], filters: Mapping[str, FilterFactory] | None
) -> tuple[FilterFactory, ...]:
    """The factories for `chain`, user-given ones first; ConfigError for an unknown name."""
    known = {**BUILTIN_CONSUMER_FILTERS, **(filters or {})}
    if isinstance(chain, str) or not all(isinstance(name, str) for name in chain):
        raise ConfigError(f"chain: expected a sequence of filter names, got {chain!r}")
    if len(set(chain)) != len(chain):
        raise ConfigError(f"chain: a filter name appears twice in {list(chain)}")
    unknown = [name for name in chain if name not in known]
    if unknown:
        raise ConfigError(
            f"chain: unknown filter {unknown[0]!r}; known: {', '.join(sorted(known))}"
        )
    if "load_balance" not in chain:
        raise ConfigError("chain: must include 'load_balance', which chooses each call's provider")
    return tuple(known[name] for name in chain)


def build_filters(ctx: MethodContext, factories: Sequence[FilterFactory]) -> list[Filter]:
    filters = (factory(ctx) for factory in factories)
    return [filter_ for filter_ in filters if filter_ is not None]
